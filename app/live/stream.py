"""An execution's events as Server-Sent Events: status changes and output chunks as they happen, then the result.

Interactive runs add `stdin` (input as it reaches the program) and `stdin_wanted` (the program
waits for input)."""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

from flask import Flask, Response, current_app, request

from ..errors import APIError
from .hub import Event
from ..storage.database import db
from ..storage.models import Execution
from ..services import executions

# settings read from app.config when present (ENGINE_EVENTS_... in the environment), else these
DEFAULTS = {
    # each open stream holds one web thread (gunicorn gthread has 512): at most this many at once,
    # so autosaves, runs and long-polls always find a thread; past it a stream gets 503
    "EVENTS_MAX_STREAMS": 256,
    # a stream ends after its final event, or after this long (the client reconnects with Last-Event-ID)
    "EVENTS_MAX_SECONDS": 300.0,
    # a comment line this often keeps proxies from closing an idle stream, and finds clients that left
    "EVENTS_KEEPALIVE_SECONDS": 15.0,
    # how often a stream re-reads the database while no run of this process feeds it (a run of
    # another engine process, or one still queued); a run of this process wakes it at once
    "EVENTS_RECHECK_SECONDS": 0.5,
    # the same while this process runs it: only a reaper in another process could end it unseen
    "EVENTS_LOCAL_RECHECK_SECONDS": 2.0,
    # what EventSource waits before it reconnects, in milliseconds
    "EVENTS_RETRY_MS": 1000,
}

Render = Callable[[Execution], dict]


def settings() -> dict[str, float]:
    return {name: float(current_app.config.get(name, default)) for name, default in DEFAULTS.items()}


class StreamGate:
    """Counts the open streams of one app, refusing one past the limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0

    def enter(self, limit: int) -> bool:
        with self._lock:
            if self.open >= limit:
                return False
            self.open += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.open -= 1


def gate() -> StreamGate:
    # dict.setdefault is atomic: two first requests at once share one gate
    return current_app.extensions.setdefault("event_streams", StreamGate())


def parse_last_event_id(value: str | None) -> int:
    """The seq a reconnecting client saw last (its Last-Event-ID), 0 for a first connection."""
    if value is None or value.strip() == "":
        return 0
    text = value.strip()
    if not text.isdigit() or len(text) > 12:
        raise APIError("invalid_parameter", "Last-Event-ID must be an event id this stream sent (a whole number).", 400)
    return int(text)


def open_stream(execution_id: str, last_event_id: str | None, render: Render) -> Response:
    """The text/event-stream response for one execution (404 unknown id, 503 when too many streams are open)."""
    after = parse_last_event_id(last_event_id)
    executions.get(execution_id)
    _finish_reading()
    limits = settings()
    streams = gate()
    if not streams.enter(int(limits["EVENTS_MAX_STREAMS"])):
        raise APIError(
            "too_many_streams",
            "Too many event streams are open; poll GET /executions/{id}?wait= or try again shortly.",
            503,
            {"Retry-After": "5"},
        )
    _no_delay()
    # no stream_with_context: the stream holds no request context (nor its database session)
    # between events; it enters the app context only for each short read
    app = current_app._get_current_object()
    response = Response(
        _events(app, execution_id, after, render, limits),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(streams.leave)
    return response


def _no_delay() -> None:
    # each event goes out in one write; no Nagle delay on the small ones (gunicorn sets this on
    # its listening socket too; other servers may not)
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def _events(app: Flask, execution_id: str, after: int, render: Render, limits: dict[str, float]) -> Iterator[str]:
    """Yield the stream, one string per write: events that belong together go out in one piece."""
    hub = app.extensions["engine"].hub
    backbone = app.extensions["engine"].backbone
    started = last_write = time.monotonic()
    deadline = started + limits["EVENTS_MAX_SECONDS"]
    keepalive = limits["EVENTS_KEEPALIVE_SECONDS"]
    # the headers go out with this, so the client knows at once that the stream is open
    yield f"retry: {int(limits['EVENTS_RETRY_MS'])}\n\n"
    with hub.subscribe(execution_id, after=after) as subscription:
        sent_status: str | None = None
        fed_here = False
        next_check = 0.0
        backlog_checked = False
        while True:
            now = time.monotonic()
            out: list[str] = []
            done = False
            if now >= next_check:
                state = _read(app, execution_id, render)
                if state is None:
                    yield _event("gone", {"error": "not_found", "message": f"Execution {execution_id} was deleted."})
                    return
                status, final = state
                if final is not None:
                    # a stream that has been sending chunks sends the ones it has not yet before the
                    # end (a client that reads slowly still gets each once, in order); one that
                    # connects after the end gets the result alone, as before
                    backlog = subscription.take(0) if backlog_checked else []
                    pending = [_output_event(event) for event in backlog if event.kind in ("stdout", "stderr", "stdin")]
                    yield "".join(pending) + _event("status", {"status": status}) + _event("final", final)
                    return
                if not backlog_checked:
                    backlog_checked = True
                    backlog = subscription.take(0)
                    if not any(event.kind == "status" for event in backlog):
                        out.append(_event("status", {"status": status}))
                        sent_status = status
                    events = backlog
                else:
                    events = []
                    if status != sent_status and not fed_here:
                        out.append(_event("status", {"status": status}))
                        sent_status = status
                # on PostgreSQL the backbone feeds the hub with the events of runs anywhere: the
                # database is read only as the slow fallback, as for a run of this process
                heard = fed_here or (backbone is not None and backbone.connected)
                recheck = "EVENTS_LOCAL_RECHECK_SECONDS" if heard else "EVENTS_RECHECK_SECONDS"
                next_check = time.monotonic() + limits[recheck]
            else:
                wait = min(next_check, last_write + keepalive, deadline) - now
                events = subscription.take(max(0.0, wait))
            for event in events:
                fed_here = True
                if event.kind == "final":
                    state = _read(app, execution_id, render)
                    if state is not None and state[1] is not None:
                        out.append(_event("status", {"status": state[0]}) + _event("final", state[1], event.seq))
                        done = True
                        break
                    # not visible yet (cannot happen with one database): the next check finds it
                    next_check = 0.0
                elif event.kind == "status":
                    if event.data != sent_status:
                        out.append(_event("status", {"status": event.data}, event.seq))
                        sent_status = str(event.data)
                elif event.kind in ("stdout", "stderr", "stdin"):
                    out.append(_output_event(event))
                elif event.kind == "test_result":
                    # the grader publishes a case's public result only (app/grading/grader.py: public)
                    out.append(_event(event.kind, event.data, event.seq))
                elif event.kind == "stdin_wanted":
                    # the program is blocked reading an empty stdin; prompt: its unfinished last line
                    out.append(_event(event.kind, {"prompt": event.data}, event.seq))
            now = time.monotonic()
            if out:
                yield "".join(out)
                last_write = now
                if done:
                    return
            elif now - last_write >= keepalive:
                yield ": keep-alive\n\n"
                last_write = now
            if now >= deadline and not done:
                yield ": stream lifetime reached; reconnect with Last-Event-ID to go on\n\n"
                return


def _read(app: Flask, execution_id: str, render: Render) -> tuple[str, dict | None] | None:
    """(status, the rendered execution if terminal) from the database, or None if it is gone; holds no connection after."""
    with app.app_context():
        try:
            execution = db.session.get(Execution, execution_id)
            if execution is None:
                return None
            return execution.status, render(execution) if execution.is_terminal else None
        finally:
            _finish_reading()


def _finish_reading() -> None:
    # give the connection back: hundreds of idle streams must not hold the pool
    db.session.rollback()
    db.session.close()


def _output_event(event: Event) -> str:
    return _event(event.kind, {"text": event.data}, event.seq)


def _event(kind: str, data: object, seq: int | None = None) -> str:
    text = json.dumps(data, separators=(",", ":"))
    head = f"id: {seq}\n" if seq else ""
    return f"{head}event: {kind}\ndata: {text}\n\n"
