"""Retention: delete finished executions past their age and sessions idle past theirs, in small batches."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, exists, or_, select

from . import models
from .retry import retrying
from .database import db
from .models import CodeSession, Execution, utcnow

log = logging.getLogger(__name__)

# rows deleted per transaction: each batch holds SQLite's write lock for milliseconds, not seconds
BATCH_ROWS = 500


@dataclass(frozen=True)
class Pruned:
    executions: int
    sessions: int


def prune(
    execution_age_seconds: float | None = None,
    session_idle_seconds: float | None = None,
    now: datetime | None = None,
) -> Pruned:
    """Delete finished executions queued more than execution_age_seconds ago, and sessions with no
    autosave and no run for session_idle_seconds (their executions go with them)."""
    config = current_app.config
    now = now or utcnow()
    if execution_age_seconds is None:
        execution_age_seconds = float(config["EXECUTION_RETENTION_SECONDS"])
    if session_idle_seconds is None:
        session_idle_seconds = float(config["SESSION_IDLE_RETENTION_SECONDS"])
    executions_before = now - timedelta(seconds=execution_age_seconds)
    sessions_before = now - timedelta(seconds=session_idle_seconds)

    old_executions = select(Execution.id).where(
        Execution.status.in_(models.TERMINAL), Execution.queued_at < executions_before
    )
    recent_activity = exists().where(
        Execution.session_id == CodeSession.id,
        or_(Execution.queued_at >= sessions_before, Execution.status.in_([models.QUEUED, models.RUNNING])),
    )
    idle_sessions = select(CodeSession.id).where(CodeSession.updated_at < sessions_before, ~recent_activity)
    pruned = Pruned(_delete_in_batches(Execution, old_executions), _delete_in_batches(CodeSession, idle_sessions))
    if pruned.executions or pruned.sessions:
        log.info("retention: deleted %d executions and %d idle sessions", pruned.executions, pruned.sessions)
    return pruned


def _delete_in_batches(model: type[db.Model], ids: select) -> int:  # type: ignore[name-defined]
    total = 0
    while True:

        def batch() -> int:
            result = db.session.execute(
                delete(model)
                .where(model.id.in_(ids.limit(BATCH_ROWS).scalar_subquery()))
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
            return result.rowcount

        deleted = retrying(batch)
        total += deleted
        if deleted < BATCH_ROWS:
            return total
