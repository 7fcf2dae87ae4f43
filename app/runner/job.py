"""What a worker is handed: a Job (plain data of a claimed execution) and a Lane (its workers and slots)."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from .. import metrics
from ..sandbox import Limits
from ..slots import SlotPool
from ..storage import models
from ..storage.models import Execution

if TYPE_CHECKING:
    from sqlalchemy import Row


@dataclass(frozen=True)
class Job:
    """What a worker thread needs of a claimed execution: plain data, no ORM object across threads."""

    execution_id: str
    language: str
    source_code: str
    stdin: str
    limits: Limits
    session_id: str | None
    queued_at: datetime
    started_at: datetime | None = None
    # the program's other files (name -> content) and its command-line arguments
    files: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    # "run", or "grade" with the suite it is graded against
    kind: str = models.RUN
    test_suite_id: str | None = None
    interactive: bool = False

    # the columns of an execution that of() reads
    COLUMNS = (
        "id", "language", "source_code", "stdin", "limits", "session_id", "queued_at", "files", "args", "kind",
        "test_suite_id", "interactive",
    )

    @classmethod
    def of(cls, execution: Execution | Row) -> Job:
        """The job of an execution: the ORM object, or a row of at least COLUMNS."""
        limits = Limits(**json.loads(execution.limits)) if execution.limits else Limits()
        return cls(
            execution.id, execution.language, execution.source_code, execution.stdin, limits,
            execution.session_id, execution.queued_at,
            files=json.loads(execution.files) if execution.files else {},
            args=tuple(json.loads(execution.args)) if execution.args else (),
            kind=execution.kind or models.RUN, test_suite_id=execution.test_suite_id,
            interactive=bool(execution.interactive),
        )

    def moved(self, **result: object) -> metrics.Moved:
        """What the metrics and log line of this job's move need, without reading the row back."""
        return metrics.Moved(self.session_id, self.language, self.queued_at, self.started_at, **result)


class Lane:
    """The workers and slots of one kind of run: interactive runs wait on a learner for minutes,
    so they have their own, and a class thinking about its answers never holds a batch run's."""

    def __init__(self, interactive: bool, workers: int, slots: SlotPool) -> None:
        self.interactive = interactive
        self.workers = workers
        self.slots = slots
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="interactive" if interactive else "run")
        # workers taken; guarded by the Capacity's lock (app/runner/capacity.py)
        self.busy = 0


@dataclass(frozen=True)
class Ticket:
    """A run handed to a worker: which execution (job: as the picker read it), in which lane and slot.
    The worker claims it (a conditional UPDATE), unless claimed: the run was inserted RUNNING under
    this process's claim (a reserved start)."""

    execution_id: str
    lane: Lane
    slot: int
    job: Job
    claimed: bool = False


@dataclass(frozen=True)
class Reservation:
    """A worker and a slot held for a run about to be inserted, so it can be inserted already
    RUNNING (claimed in its own insert's transaction); execution_id is the id it will have."""

    execution_id: str
    lane: Lane
    slot: int
    owner: str | None
