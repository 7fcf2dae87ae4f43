"""Structured logs: one JSON line per request and per execution state change, each with a request id."""
from __future__ import annotations

import itertools
import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import datetime, timezone

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
# an incoming id is kept only if it is short and plain: it is echoed in a header and written to logs
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# what every LogRecord carries; anything else on a record came from `extra=` and is a field to write
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}

# one encoder for every line: json.dumps with options builds a new one per call (profiled)
_LINE_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)

requests_log = logging.getLogger("app.requests")
executions_log = logging.getLogger("app.executions")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_extra_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _LINE_ENCODER.encode(line)


class TextFormatter(logging.Formatter):
    """The classic one-line format for a terminal, with the extra fields as key=value."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = " ".join(f"{key}={value}" for key, value in _extra_fields(record).items() if value is not None)
        if not extra:
            return text
        head, newline, rest = text.partition("\n")
        return f"{head} {extra}{newline}{rest}"


class RequestIdFilter(logging.Filter):
    """Tag every record written while a request is served with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id") and has_request_context():
            record.request_id = g.get("request_id")
        return True


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test captures swap it), never a stale copy."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # noqa: ANN201 (a text stream)
        return sys.stderr


def init_app(app: Flask) -> None:
    """Send the root logger's records to stderr as LOG_FORMAT, and log every request with its id."""
    level = str(app.config["LOG_LEVEL"]).upper()
    form = str(app.config["LOG_FORMAT"]).lower()
    if form not in ("json", "text"):
        raise ValueError(f"LOG_FORMAT must be 'json' or 'text', not {form!r}")
    root = logging.getLogger()
    # create_app may run many times in one process (tests): replace our handler, keep everyone else's
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if form == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    app.before_request(_begin)
    app.after_request(_end)


def request_id() -> str:
    """This request's id: the caller's X-Request-ID if it is short and plain, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if REQUEST_ID_PATTERN.fullmatch(given) else new_request_id()


def new_request_id() -> str:
    """32 hex digits, unique: this process's random half and a counter.

    Not uuid4() per request: its os.urandom call showed in every autosave's profile under load."""
    global _id_prefix, _id_pid
    pid = os.getpid()
    if pid != _id_pid:
        # a forked process must not repeat its parent's ids
        _id_prefix, _id_pid = uuid.uuid4().hex[:16], pid
    return f"{_id_prefix}{next(_id_counter) & 0xFFFFFFFFFFFFFFFF:016x}"


_id_prefix = ""
_id_pid = 0
_id_counter = itertools.count(1)


def _begin() -> None:
    g.request_id = request_id()
    g.log_started = time.perf_counter()


def _end(response: Response) -> Response:
    # an error raised before _begin ran (a malformed request) still gets an id
    rid = g.get("request_id") or request_id()
    response.headers[REQUEST_ID_HEADER] = rid
    # the request object once: each use of the `request` proxy looks it up again
    current = request._get_current_object()  # type: ignore[attr-defined]
    route = current.url_rule.rule if current.url_rule is not None else None
    log_request(current.method, route, current.path, response.status_code, g.get("log_started"), rid, current.remote_addr)
    return response


def log_request(
    method: str, route: str | None, path: str, status: int, started: float | None, rid: str, remote_addr: str | None
) -> None:
    """The request's one log line (started: its time.perf_counter() at the start, for duration_ms)."""
    if not requests_log.isEnabledFor(logging.INFO):
        return
    duration_ms = round((time.perf_counter() - started) * 1000, 2) if started is not None else None
    fields = {
        "event": "request",
        "method": method,
        "route": route,
        "path": path,
        "status": status,
        "duration_ms": duration_ms,
        "request_id": rid,
        "remote_addr": remote_addr,
    }
    handler = _plain_json_handler()
    if handler is not None:
        _write_json_line(handler, time.time(), f"{method} {path} {status}", fields)
        return
    # made and handled directly: Logger.info would first walk the stack for the caller's file and
    # line, which no format here writes (profiled: a third of the line's cost on every request)
    record = requests_log.makeRecord(requests_log.name, logging.INFO, __file__, 0, "%s %s %s", (method, path, status), None, extra=fields)
    requests_log.handle(record)


def _plain_json_handler() -> StderrHandler | None:
    """Our JSON handler, when it is the only place a request's record would go (the default set-up)."""
    if requests_log.handlers or requests_log.filters or not requests_log.propagate:
        return None
    handlers = logging.getLogger().handlers
    if len(handlers) != 1:
        # another handler (a test's log capture, an operator's) gets the record as usual
        return None
    handler = handlers[0]
    if type(handler) is not StderrHandler or type(handler.formatter) is not JsonFormatter or handler.level > logging.INFO:
        return None
    # RequestIdFilter adds nothing to a record that carries its request id; any other filter decides
    if any(type(each) is not RequestIdFilter for each in handler.filters):
        return None
    return handler


def _write_json_line(handler: StderrHandler, created: float, message: str, fields: dict[str, object]) -> None:
    """The line JsonFormatter writes for such a record, without the LogRecord, the filters and
    the formatter (profiled: ~9% of an autosave's CPU in a gunicorn worker went to the log line)."""
    line = {"ts": _timestamp(created), "level": "INFO", "logger": requests_log.name, "message": message, **fields}
    text = _LINE_ENCODER.encode(line) + handler.terminator
    with handler.lock:  # type: ignore[union-attr] (created by Handler.__init__)
        stream = handler.stream
        stream.write(text)
        stream.flush()


def _timestamp(created: float) -> str:
    """As JsonFormatter writes record.created: ISO 8601 UTC with milliseconds; the date and time
    to the second are formatted once per second."""
    second = int(created)
    # as datetime.fromtimestamp: rounded to the microsecond, then cut to the millisecond
    micro = round((created - second) * 1_000_000)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    global _ts_cache
    cached_second, prefix = _ts_cache
    if second != cached_second:
        prefix = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        # one tuple, rebound at once: a thread never reads one second's prefix with another's number
        _ts_cache = (second, prefix)
    return f"{prefix}.{micro // 1000:03d}Z"


_ts_cache: tuple[int, str] = (-1, "")


def execution_moved(
    execution_id: str,
    session_id: str | None,
    language: str | None,
    from_status: str | None,
    to_status: str,
    error: str | None = None,
    **durations: float | int | None,
) -> None:
    """One line for an execution's state change; never its code, stdin or output."""
    executions_log.info(
        "execution %s %s -> %s",
        execution_id,
        from_status,
        to_status,
        extra={
            "event": "execution",
            "execution_id": execution_id,
            "session_id": session_id,
            "language": language,
            "from_status": from_status,
            "to_status": to_status,
            "error": error,
            **durations,
        },
    )


def _extra_fields(record: logging.LogRecord) -> dict[str, object]:
    return {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES and not key.startswith("_")}
