"""An execution's events as Server-Sent Events text: status changes and output chunks as they happen, then the result.

Interactive runs add `stdin` (input as it reaches the program) and `stdin_wanted` (the program
waits for input). The HTTP response around it is app/services/events.py's; the settings are
app/config.py's EVENTS_*."""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

from flask import Flask

from ..storage.database import db
from ..storage.models import Execution
from .hub import Event

Render = Callable[[Execution], dict]
SETTINGS = (
    "EVENTS_MAX_STREAMS", "EVENTS_MAX_SECONDS", "EVENTS_KEEPALIVE_SECONDS", "EVENTS_RECHECK_SECONDS",
    "EVENTS_LOCAL_RECHECK_SECONDS", "EVENTS_RETRY_MS",
)


def settings(app: Flask) -> dict[str, float]:
    """The stream's settings (app/config.py), read once when a stream opens."""
    return {name: float(app.config[name]) for name in SETTINGS}


def events(app: Flask, execution_id: str, after: int, render: Render, limits: dict[str, float]) -> Iterator[str]:
    """Yield the stream, one string per write: events that belong together go out in one piece."""
    engine = app.extensions["engine"]
    hub, backbone, watcher = engine.hub, engine.backbone, engine.watcher
    started = last_write = time.monotonic()
    deadline = started + limits["EVENTS_MAX_SECONDS"]
    keepalive = limits["EVENTS_KEEPALIVE_SECONDS"]
    # the headers go out with this, so the client knows at once that the stream is open
    yield f"retry: {int(limits['EVENTS_RETRY_MS'])}\n\n"
    # the process's one watcher publishes "final" here when another process ends the run, as it
    # does for the long-polls (app/live/watcher.py)
    with hub.subscribe(execution_id, after=after) as subscription, watcher.watch(execution_id):
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
            finish_reading()


def finish_reading() -> None:
    # give the connection back: hundreds of idle streams must not hold the pool
    db.session.rollback()
    db.session.close()


def _output_event(event: Event) -> str:
    return _event(event.kind, {"text": event.data}, event.seq)


def _event(kind: str, data: object, seq: int | None = None) -> str:
    text = json.dumps(data, separators=(",", ":"))
    head = f"id: {seq}\n" if seq else ""
    return f"{head}event: {kind}\ndata: {text}\n\n"
