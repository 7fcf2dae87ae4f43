"""Queueing runs, reading results, and long-polling for them."""
from __future__ import annotations

import json
import time

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import catalog, models
from ..errors import APIError
from ..extensions import db
from ..models import Execution


def engine():
    """The running engine's parts (runner, hub, sandbox), as create_app() wired them."""
    return current_app.extensions["engine"]


def check_size(field: str, value: str, limit_key: str) -> None:
    limit = current_app.config[limit_key]
    if len(value.encode()) > limit:
        raise APIError(f"{field}_too_large", f"{field} is larger than the limit of {limit} bytes.", 413, limit_bytes=limit)


def submit(
    language_name: str,
    source_code: str,
    stdin: str = "",
    session_id: str | None = None,
    idempotency_key: str | None = None,
) -> Execution:
    """Store a QUEUED execution of source_code and wake the runner; returns at once."""
    language = catalog.language_named(language_name)
    check_size("source_code", source_code, "SOURCE_MAX_BYTES")
    check_size("stdin", stdin, "STDIN_MAX_BYTES")
    parts = engine()
    if not parts.runner.accepting:
        raise APIError("shutting_down", "The engine is shutting down; try again shortly.", 503, {"Retry-After": "5"})
    if not parts.sandbox.available:
        raise APIError("sandbox_unavailable", f"Code cannot run here: {parts.sandbox.unavailable_reason}", 503, {"Retry-After": "60"})
    queued = db.session.scalar(select(func.count()).where(Execution.status == models.QUEUED))
    if queued >= current_app.config["QUEUE_MAX"]:
        raise APIError("queue_full", "Too many runs are waiting; try again shortly.", 503, {"Retry-After": "2"})
    execution = Execution(
        session_id=session_id,
        language=language.name,
        source_code=source_code,
        stdin=stdin,
        idempotency_key=idempotency_key,
        limits=json.dumps(catalog.limits_for(language).as_dict()),
    )
    db.session.add(execution)
    try:
        db.session.commit()
    except IntegrityError:
        # the same Idempotency-Key won a race with this request: answer with its execution
        db.session.rollback()
        existing = find_by_idempotency_key(session_id, idempotency_key)
        if existing is None:
            raise
        return existing
    parts.runner.wake()
    return execution


def find_by_idempotency_key(session_id: str | None, key: str | None) -> Execution | None:
    if key is None:
        return None
    return db.session.scalar(
        select(Execution).where(Execution.session_id == session_id, Execution.idempotency_key == key)
    )


def get(execution_id: str) -> Execution:
    execution = db.session.get(Execution, execution_id)
    if execution is None:
        raise APIError("not_found", f"No execution {execution_id}.", 404)
    return execution


def wait(execution_id: str, seconds: float) -> Execution:
    """The execution once it is terminal, or as it is after `seconds`; holds no database connection while waiting."""
    deadline = time.monotonic() + min(seconds, current_app.config["LONG_POLL_MAX_SECONDS"])
    recheck = current_app.config["LONG_POLL_RECHECK_SECONDS"]
    with engine().hub.subscribe(execution_id) as subscription:
        while True:
            execution = get(execution_id)
            remaining = deadline - time.monotonic()
            if execution.is_terminal or remaining <= 0:
                return execution
            # give the connection back: hundreds of waiters must not hold the pool
            db.session.rollback()
            db.session.close()
            # woken at once by this process's runner; the recheck covers other processes
            for event in subscription.take(min(remaining, recheck)):
                if event.kind == "final":
                    break
