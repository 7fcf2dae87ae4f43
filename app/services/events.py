"""Opening an execution's event stream: the checks, the limit on open streams, and the HTTP response
around app/live/stream.py's events."""
from __future__ import annotations

import socket
import threading

from flask import Response, current_app, request

from ..errors import APIError
from ..live import stream
from . import executions


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
    # ASCII digits only: str.isdigit() also takes "¹" or "٣", which int() refuses (found by the fuzzer)
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise APIError("invalid_parameter", "Last-Event-ID must be an event id this stream sent (a whole number).", 400)
    return int(text)


def open_stream(execution_id: str, last_event_id: str | None, render: stream.Render) -> Response:
    """The text/event-stream response for one execution (404 unknown id, 503 when too many streams are open)."""
    after = parse_last_event_id(last_event_id)
    executions.get(execution_id)
    stream.finish_reading()
    app = current_app._get_current_object()
    limits = stream.settings(app)
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
    response = Response(
        stream.events(app, execution_id, after, render, limits),
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
