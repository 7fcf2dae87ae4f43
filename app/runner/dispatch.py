"""The dispatcher: picks, fairly, which queued run goes to a free worker; the worker claims it."""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import ColumnElement, Select, and_, bindparam, case, func, select

from ..storage import models, retention
from ..storage.database import db
from ..storage.models import Execution
from .capacity import Capacity
from .job import Job, Lane

log = logging.getLogger(__name__)

# how often the dispatcher looks at the database without being woken: executions queued by
# another process, or left behind by one that died, are seen within this. While the live backbone
# listens, other processes announce what they queue, and the look is only the slow fallback: every
# REAP_EVERY_SECONDS, with the reaper (or BACKBONE_FALLBACK_SECONDS if that is shorter)
DISPATCH_TICK_SECONDS = 0.5
REAP_EVERY_SECONDS = 2.0
# the round-robin forgets clients it served longer ago than this, once it remembers this many
SERVED_MEMORY = 10_000
SERVED_FORGET_SECONDS = 600.0


@dataclass(frozen=True)
class Pick:
    execution_id: str
    owner: str | None
    # the run as the pick read it: its worker's claim need not read it again
    job: Job | None = None


class Turns:
    """The round-robin's memory: when this process last handed a run of each client to a worker."""

    def __init__(self) -> None:
        self._served: dict[str | None, float] = {}

    def served(self, owner: str | None) -> None:
        now = time.monotonic()
        self._served[owner] = now
        if len(self._served) > SERVED_MEMORY:
            # forget clients served long ago: they would go first anyway
            self._served = {o: t for o, t in self._served.items() if now - t < SERVED_FORGET_SECONDS}

    def last_served(self, owner: str | None) -> float:
        return self._served.get(owner, 0.0)


# The fair pick's two statements, built once on the table with bound parameters (the ORM's path
# cost three times the query, profiled): every client's runs RUNNING (both lanes) and oldest run
# QUEUED per lane, in one grouped read; then the chosen client's oldest QUEUED run of the lane.
# Runs this process holds are left out (an expanding parameter: the statement stays cached).
_EXECUTIONS = Execution.__table__
_NOT_HELD = _EXECUTIONS.c.id.not_in(bindparam("held", expanding=True))
_CLIENTS = (
    select(
        _EXECUTIONS.c.owner,
        _EXECUTIONS.c.interactive,
        func.sum(case((_EXECUTIONS.c.status == models.RUNNING, 1), else_=0)),
        func.min(case((and_(_EXECUTIONS.c.status == models.QUEUED, _NOT_HELD), _EXECUTIONS.c.queued_at))),
    )
    .where(_EXECUTIONS.c.status.in_([models.QUEUED, models.RUNNING]))
    .group_by(_EXECUTIONS.c.owner, _EXECUTIONS.c.interactive)
)


def _oldest_queued(of_owner: ColumnElement[bool]) -> Select:
    # the job's columns too (never changed after the insert): the worker's claim is then its UPDATE alone
    return (
        select(*(_EXECUTIONS.c[name] for name in Job.COLUMNS))
        .where(_EXECUTIONS.c.status == models.QUEUED, of_owner, _EXECUTIONS.c.interactive == bindparam("interactive"), _NOT_HELD)
        .order_by(_EXECUTIONS.c.queued_at)
        .limit(1)
    )


_OLDEST_OF_OWNER = _oldest_queued(_EXECUTIONS.c.owner == bindparam("owner"))
_OLDEST_OF_NO_OWNER = _oldest_queued(_EXECUTIONS.c.owner.is_(None))


class Waiting:
    """One dispatch pass's view of the queue, read once for both lanes: each client's runs
    RUNNING and, per lane, its oldest run QUEUED. A lane's part is read again after a run of that
    lane was handed over (the other lane's part still holds: a handover changes only its own lane).
    """

    def __init__(self, capacity: Capacity, turns: Turns) -> None:
        self.capacity = capacity
        self.turns = turns
        self._running: dict[str | None, int] = {}
        # interactive -> {owner: its oldest QUEUED run's queued_at}; a lane missing is to be read
        self._queued: dict[bool, dict[str | None, object]] = {}

    def pick(self, interactive: bool) -> Pick | None:
        """The lane's next run, fairly: round-robin over the clients (sessions, one-shot addresses).

        The client with the fewest runs RUNNING (or handed to a worker here) goes first; among
        equals, the one this process served longest ago; each client's runs keep their order. A
        session that queued fifty runs takes turns with a session that queued one, even when only
        one slot is free. Runs this process already holds are not picked again.
        """
        try:
            if interactive not in self._queued:
                self._read()
            waiting = self._queued[interactive]
            if not waiting:
                return None
            running = dict(self._running)
            for owner, count in self.capacity.unclaimed_by_owner().items():
                running[owner] = running.get(owner, 0) + count
            owner = min(waiting, key=lambda o: (running.get(o, 0), self.turns.last_served(o), waiting[o]))
            params: dict[str, object] = {"interactive": interactive, "held": self.capacity.held()}
            if owner is None:
                statement = _OLDEST_OF_NO_OWNER
            else:
                statement, params["owner"] = _OLDEST_OF_OWNER, owner
            row = db.session.connection().execute(statement, params).first()
            return Pick(row.id, owner, Job.of(row)) if row is not None else None
        finally:
            # no transaction stays open while the worker claims
            db.session.rollback()

    def handed_over(self, interactive: bool) -> None:
        """A run of the lane went to a worker (or turned out held here): read the lane again."""
        self._queued.pop(interactive, None)

    def _read(self) -> None:
        rows = db.session.connection().execute(_CLIENTS, {"held": self.capacity.held()}).all()
        self._running = {}
        self._queued = {False: {}, True: {}}
        for owner, interactive, running, first_queued in rows:
            self._running[owner] = self._running.get(owner, 0) + int(running or 0)
            if first_queued is not None and interactive is not None:
                self._queued[bool(interactive)][owner] = first_queued


class Dispatcher:
    """The thread that hands queued runs to free workers, and on its way reaps and prunes."""

    def __init__(
        self, app: Flask, capacity: Capacity, turns: Turns, hand_over: Callable[..., str],
        reap: Callable[[], int], listening: Callable[[], bool],
    ) -> None:
        self.app = app
        self.capacity = capacity
        self.turns = turns
        # hand_over(lane, execution_id, owner, slot) -> "started", "busy" (no worker) or "held"
        self._hand_over = hand_over
        self._reap = reap
        # True while the live backbone hears the other engine processes' "queued" notices
        self._listening = listening
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        # True while runs may be QUEUED that this process has not looked at: only then does a
        # worker that frees up wake the dispatcher (otherwise the tick finds other engines' runs)
        self.backlog = True
        # per lane (interactive or not): the latest news that runs of it may wait (a stamp from
        # _stamps: a run queued here or announced by another process, a tick, a lost claim), and
        # the news its last look that found nothing covered. A lane with no news is not read:
        # most passes are for the batch lane, and an idle interactive lane cost a read each
        # (profiled: a third of the dispatcher's reads)
        self._stamps = itertools.count(1)
        self._news = {False: 0, True: 0}
        self._looked = {False: -1, True: -1}
        self._last_reap = 0.0
        self._last_prune = 0.0
        self.thread = threading.Thread(target=self._dispatch_forever, name="dispatcher", daemon=True)

    def wake(self, interactive: bool | None = None) -> None:
        """There may be work: a run was queued (of the interactive lane or not; None: either) that no worker took at once."""
        self.news(interactive)
        self.backlog = True
        self.wakeup.set()

    def news(self, interactive: bool | None = None) -> None:
        """Runs of the lane (None: of both) may be waiting: its next pass reads the queue."""
        for lane in (False, True) if interactive is None else (bool(interactive),):
            # next() of a count is atomic: a stamp is never lost to a race with the pass
            self._news[lane] = next(self._stamps)

    def _dispatch_forever(self) -> None:
        fallback = float(self.app.config["BACKBONE_FALLBACK_SECONDS"])
        while not self.stopping.is_set():
            woken = self.wakeup.wait(min(fallback, REAP_EVERY_SECONDS) if self._listening() else DISPATCH_TICK_SECONDS)
            self.wakeup.clear()
            if self.stopping.is_set():
                break
            if not woken:
                # the tick: runs other processes queued without a word (or left behind) are found here
                self.news()
            try:
                with self.app.app_context():
                    self._reap_if_due()
                    self._prune_if_due()
                    self.dispatch()
            except Exception:
                # the dispatcher must outlive any one bad moment of the database
                log.exception("dispatch failed; retrying on the next tick")
            finally:
                with self.app.app_context():
                    db.session.remove()

    def dispatch(self) -> None:
        # set while it looks: a worker that frees up meanwhile wakes it for one more look, instead
        # of reading the last pass's "nothing waits" and leaving a run to the next tick
        self.backlog = True
        # both lanes, always: a lane with nothing to pick must not stop the other; one read of
        # the queue serves both
        queue = Waiting(self.capacity, self.turns)
        for lane in self.capacity.lanes:
            news = self._news[lane.interactive]
            if news == self._looked[lane.interactive]:
                # nothing new since a look found this lane's queue empty
                continue
            if not self._dispatch_lane(lane, queue):
                # empty as of this news (news that came during the look is newer: looked at next pass)
                self._looked[lane.interactive] = news
        self.backlog = any(self._news[lane] != self._looked[lane] for lane in (False, True))

    def _dispatch_lane(self, lane: Lane, queue: Waiting) -> bool:
        """Hand the lane's runs to workers while it has workers and slots; True if runs may still be waiting."""
        while not self.stopping.is_set():
            if not self.capacity.has_free_worker(lane):
                # runs may be waiting: look again as soon as a worker is free
                return True
            # the slot first: while another engine process holds every slot, a pick would be
            # read for nothing (profiled: most picks of a busy engine ended "no slot")
            slot = lane.slots.acquire()
            if slot is None:
                return True
            pick = queue.pick(lane.interactive)
            if pick is None:
                lane.slots.release(slot, used=False)
                # nothing waits: a worker that frees up need not wake the dispatcher
                return False
            if self._hand_over(lane, pick.execution_id, pick.owner, pick.job, slot=slot) == "busy":
                # no worker: runs wait for one
                return True
            queue.handed_over(lane.interactive)
        return False

    def _prune_if_due(self) -> None:
        now = time.monotonic()
        interval = float(self.app.config["RETENTION_INTERVAL_SECONDS"])
        if interval <= 0 or (self._last_prune and now - self._last_prune < interval):
            return
        self._last_prune = now
        retention.prune()

    def _reap_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_reap < REAP_EVERY_SECONDS:
            return
        self._last_reap = now
        self._reap()
