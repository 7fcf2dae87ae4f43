"""Ends the runs of engine processes that died: RUNNING, claimed elsewhere, and that claim gone."""
from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import psutil
from sqlalchemy import select

from ..sandbox.limits import INTERRUPTED
from ..storage import models
from ..storage.database import db
from ..storage.models import Execution, utcnow
from .moves import Moves

log = logging.getLogger(__name__)


def reap_abandoned(instance_id: str, holds: Callable[[str], bool], moves: Moves) -> int:
    """End FAILED("interrupted") every RUNNING execution whose engine process is gone.

    Not re-run: a program that takes its engine down with it would otherwise do so at every
    restart; the client sees why and can run it again (docs/reliability.md).
    """
    now = utcnow()
    rows = db.session.execute(
        select(Execution.id, Execution.claimed_by, Execution.lease_expires_at).where(Execution.status == models.RUNNING)
    ).all()
    db.session.rollback()
    reaped = 0
    for execution_id, claimed_by, lease in rows:
        if claimed_by == instance_id:
            # ours but no longer held here: its result could not be written
            if holds(execution_id):
                continue
        elif not ((lease is not None and lease < now) or claimer_is_dead(claimed_by)):
            continue
        if moves.move(execution_id, models.FAILED, finished_at=now, error=INTERRUPTED, lease_expires_at=None):
            reaped += 1
    if reaped:
        log.warning("ended %d executions interrupted by an engine that stopped", reaped)
    return reaped


def claimer_is_dead(claimed_by: str | None) -> bool:
    """True when the claiming engine process ran on this host and no longer exists."""
    if not claimed_by:
        return True
    host, _, rest = claimed_by.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    return not psutil.pid_exists(int(pid_text))
