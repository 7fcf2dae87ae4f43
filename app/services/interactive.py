"""Stopping a run, and sending stdin to an interactive run while it runs.

Each request is stored in the database first, then handed at once to the run if this process
runs it; if another engine process runs it, that process's relay (app/controls.py) delivers it.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import APIError
from ..runner.moves import Moves
from ..sandbox.limits import CANCELLED
from ..storage import models
from ..storage.database import db
from ..storage.models import Execution, ExecutionStdin
from ..storage.retry import retrying
from . import executions


def cancel(execution_id: str) -> Execution:
    """Stop a QUEUED or RUNNING execution: it ends FAILED("cancelled"); 409 when it has already ended."""
    execution = executions.get(execution_id)
    parts = executions.engine()
    # two rounds: a QUEUED run may be claimed between the read and the move
    for _ in range(2):
        if execution.is_terminal:
            break
        now = models.utcnow()
        db.session.rollback()
        if execution.status == models.QUEUED:
            moved = Moves(parts.hub).move(
                execution_id, models.FAILED, only_from=models.QUEUED, finished_at=now, error=CANCELLED, cancel_requested_at=now
            )
            if moved:
                return executions.get(execution_id)
        elif _request_stop(execution_id, now):
            # at once if the run is here; else the backbone tells the process running it (PostgreSQL),
            # or that process reads the request within a tick of its watcher
            if not parts.runner.controls.deliver_cancel(execution_id) and parts.backbone is not None:
                parts.backbone.cancel(execution_id)
            return executions.get(execution_id)
        db.session.expire_all()
        execution = executions.get(execution_id)
    raise APIError("already_finished", f"Execution {execution_id} has already ended ({execution.status}).", 409)


def _request_stop(execution_id: str, now: object) -> bool:
    table = Execution.__table__

    def work() -> bool:
        done = db.session.execute(
            update(table)
            .where(table.c.id == execution_id, table.c.status == models.RUNNING)
            .values(cancel_requested_at=func.coalesce(table.c.cancel_requested_at, now))
        )
        db.session.commit()
        return done.rowcount == 1

    return retrying(work)


@dataclass(frozen=True)
class Sent:
    """What POST /executions/{id}/stdin answers."""

    execution_id: str
    seq: int
    # False when this seq had already been received (a retry): nothing was appended
    appended: bool
    eof: bool
    # the run's stdin so far in UTF-8 bytes, the run request's included
    stdin_bytes: int


def send(execution_id: str, data: str, eof: bool = False, seq: int | None = None) -> Sent:
    """Append data (and the end of input, if eof) to a RUNNING interactive execution's stdin.

    seq numbers the chunks of a run from 1; a chunk sent again with the same seq and content is
    accepted once (safe to retry); without seq the chunk is numbered next.
    """
    execution = executions.get(execution_id)
    if execution.status != models.RUNNING or not execution.interactive:
        state = "is not interactive" if not execution.interactive else f"is {execution.status}"
        raise APIError("not_running", f"Execution {execution_id} {state}: stdin is taken only while an interactive run is RUNNING.", 409)
    initial_bytes = len(execution.stdin.encode())
    limit = int(current_app.config["STDIN_MAX_BYTES"])
    size = len(data.encode())
    db.session.rollback()
    controls = executions.engine().runner.controls
    # the run is here and this is its next chunk: the program gets it before the write below (which
    # still decides the answer, and from which other processes learn of it); a chunk the run has
    # received already is not given again when the write below hands it over
    if seq is not None:
        controls.deliver_stdin_first(execution_id, seq, data, eof, limit - initial_bytes)

    def append() -> Sent:
        last_seq, sent_bytes, closed = db.session.execute(
            select(
                func.coalesce(func.max(ExecutionStdin.seq), 0),
                func.coalesce(func.sum(ExecutionStdin.size), 0),
                # PostgreSQL has no max() of booleans
                func.coalesce(func.sum(case((ExecutionStdin.eof.is_(True), 1), else_=0)), 0),
            ).where(ExecutionStdin.execution_id == execution_id)
        ).one()
        total = initial_bytes + int(sent_bytes)
        if seq is not None and seq <= last_seq:
            return _replayed(execution_id, seq, data, eof, total)
        if closed:
            raise APIError("stdin_closed", "The end of input was already sent; nothing may follow it.", 409)
        if seq is not None and seq != last_seq + 1:
            raise APIError("stdin_out_of_order", f"The next chunk is seq {last_seq + 1}.", 409, expected_seq=last_seq + 1)
        if total + size > limit:
            raise APIError("stdin_too_large", f"A run's stdin is limited to {limit} bytes in all.", 413, limit_bytes=limit)
        next_seq = last_seq + 1
        db.session.add(ExecutionStdin(execution_id=execution_id, seq=next_seq, data=data, size=size, eof=eof))
        db.session.commit()
        return Sent(execution_id, next_seq, True, eof, total + size)

    try:
        sent = retrying(append, immediate=True)
    except IntegrityError:
        # the same seq won a race with this request (another engine process): a retry, or a conflict
        db.session.rollback()
        sent = retrying(append, immediate=True)
    if sent.appended and not controls.deliver_stdin(execution_id, sent.seq, data, eof):
        backbone = executions.engine().backbone
        if backbone is not None:
            backbone.stdin(execution_id, sent.seq, data, eof)
    return sent


def _replayed(execution_id: str, seq: int, data: str, eof: bool, total: int) -> Sent:
    stored = db.session.get(ExecutionStdin, (execution_id, seq))
    same = stored is not None and stored.data == data and bool(stored.eof) == eof
    db.session.rollback()
    if not same:
        raise APIError("stdin_conflict", f"Chunk {seq} was already received with other content.", 409)
    return Sent(execution_id, seq, False, eof, total)
