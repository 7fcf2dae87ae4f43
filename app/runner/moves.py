"""The one observer of a status move the engine makes (the runner's, and a cancel of a queued run): publish it, count it, log it."""
from __future__ import annotations

from dataclasses import replace

from .. import metrics
from ..live.hub import Hub
from ..storage import models
from .job import Job


class Moves:
    """models.move(), then what every move the runner made is followed by: the event its waiters
    get ("status" for RUNNING, "final" for an end) and the metrics and log line of the move."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def move(
        self, execution_id: str, to: str, job: Job | None = None, retry_seconds: float | None = None,
        only_from: str | None = None, **fields: object,
    ) -> bool:
        """Move the execution to `to` (models.move); only when this call moved it, publish, count and log it.

        job, when the caller has it, spares the metrics a read of the row.
        """
        if not models.move(execution_id, to, retry_seconds, only_from, **fields):
            return False
        self.announce(execution_id, to, job, **fields)
        return True

    def announce(self, execution_id: str, to: str, job: Job | None = None, **fields: object) -> None:
        """What follows a move made (by move(), or by an insert already RUNNING): the event, metrics and log line."""
        self.hub.publish(execution_id, "status" if to == models.RUNNING else "final", to)
        known = None
        if job is not None:
            if "started_at" in fields:
                job = replace(job, started_at=fields["started_at"])
            known = job.moved(**{name: fields[name] for name in metrics.Moved._fields[4:] if name in fields})
        metrics.execution_moved(execution_id, to, known)
