"""The runner's public face: start, reserve, offer, wake, shutdown, counts. It wires the dispatcher,
the workers, the reaper and the watcher; a run starts through _hand_over() or start_reserved()."""
from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import datetime, timedelta

from flask import Flask

from ..controls import Controls
from ..live.backbone import Backbone
from ..live.hub import Hub
from ..live.watcher import Watcher
from ..sandbox import Interactivity, Sandbox
from ..sandbox.limits import INTERRUPTED
from ..slots import INTERACTIVE_SLOT_FIRST, SlotPool
from ..storage import models
from ..storage.models import Execution, new_id
from .capacity import Capacity
from .dispatch import Dispatcher, Turns
from .job import Job, Lane, Reservation, Ticket
from .moves import Moves
from .reaper import reap_abandoned
from .worker import LEASE_GRACE_SECONDS, Worker

SELF_TEST_SLOT_WAIT_SECONDS = 10.0


class Runner:
    """The bounded run pool: QUEUED executions go to free workers, which drive each to a terminal state.

    Two pickers choose which run goes to a free worker: the direct start (on the request that
    queues it, when nothing else waits: reserve() a worker and slot, insert the run RUNNING under
    this process's claim, start_reserved(); or offer() after a plain insert) and the dispatcher (the
    fair pick, for everything else, through _hand_over(); its worker claims).
    """

    def __init__(self, app: Flask, sandbox: Sandbox, hub: Hub) -> None:
        self.app = app
        self.sandbox = sandbox
        self.hub = hub
        config = app.config
        self.workers = int(config["RUN_WORKERS"])
        self.slots = SlotPool(config["SLOT_LOCK_DIR"], int(config["RUN_SLOTS"]), keep_seconds=float(config["RUN_SLOT_KEEP_SECONDS"]))
        interactive_slots = SlotPool(config["SLOT_LOCK_DIR"], int(config["INTERACTIVE_RUN_SLOTS"]), first=INTERACTIVE_SLOT_FIRST)
        self._capacity = Capacity(
            (Lane(False, self.workers, self.slots), Lane(True, int(config["INTERACTIVE_RUN_WORKERS"]), interactive_slots))
        )
        self.interactivity = Interactivity(
            input_idle_seconds=float(config["INTERACTIVE_INPUT_IDLE_SECONDS"]),
            total_seconds=float(config["INTERACTIVE_TIME_LIMIT_SECONDS"]),
        )
        # stop and stdin requests for the runs in flight here
        self.controls = Controls()
        self.instance_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._moves = Moves(hub)
        self._turns = Turns()
        self._worker = Worker(
            app, sandbox, self._moves, self._capacity, self.controls, self.interactivity, self.instance_id, self._worker_freed
        )
        self._dispatcher = Dispatcher(
            app, self._capacity, self._turns, self._hand_over, self.reap_abandoned,
            listening=lambda: self.backbone is not None and self.backbone.connected,
        )
        self._worker.stopping = self._dispatcher.stopping.is_set
        # the one watcher of this process (app/live/watcher.py); it also relays the stop and stdin
        # requests other processes stored for the runs in flight here
        self.watcher = Watcher(app, hub, self.instance_id, chores=((lambda: len(self.controls) > 0, self.controls.relay),))
        self._backbone: Backbone | None = None

    @property
    def backbone(self) -> Backbone | None:
        """PostgreSQL's LISTEN/NOTIFY or local sockets between engine processes, set by create_app."""
        return self._backbone

    @backbone.setter
    def backbone(self, backbone: Backbone | None) -> None:
        self._backbone = self._worker.backbone = self.watcher.backbone = backbone

    def start(self) -> None:
        """Prove the sandbox works (or record why not), then start claiming work."""
        deadline = time.monotonic() + SELF_TEST_SLOT_WAIT_SECONDS
        slot = self.slots.acquire()
        while slot is None and time.monotonic() < deadline:
            time.sleep(0.05)
            slot = self.slots.acquire()
        if slot is not None:
            try:
                self._worker.clear_slot_once(slot)
                self.sandbox.self_test(slot)
            finally:
                self.slots.release(slot)
        self._dispatcher.thread.start()
        self.watcher.start()

    def wake(self, interactive: bool | None = None) -> None:
        """Tell the dispatcher there may be work: a run (of the interactive lane or not; None:
        either) was queued that no worker took at once."""
        self._dispatcher.wake(interactive)

    def offer(self, execution: Execution, others_waiting: bool) -> None:
        """Start a just-queued execution on a free worker at once, or leave it to the dispatcher.

        Only when nothing else waits (so the round-robin has nothing to decide) and a worker and a
        slot are free: the run then starts without waiting for the dispatcher to wake and look.
        """
        lane = self._capacity.lane(bool(execution.interactive))
        if others_waiting or not self.accepting or not self._dispatcher.thread.is_alive():
            self._left_queued(lane.interactive)
            return
        if self._hand_over(lane, execution.id, execution.owner, Job.of(execution)) == "busy":
            self._left_queued(lane.interactive)

    def reserve(self, interactive: bool, owner: str | None) -> Reservation | None:
        """A worker and a slot for a run about to be queued, or None when none is free: the run may then
        be inserted RUNNING under this process's claim (claim_fields) and started with start_reserved().
        Whoever reserves either starts or lets go (unreserve)."""
        lane = self._capacity.lane(interactive)
        if not self.accepting or not self._dispatcher.thread.is_alive():
            return None
        execution_id = new_id()
        if not self._capacity.take(lane, execution_id, owner):
            return None
        slot = lane.slots.acquire()
        if slot is None:
            self._capacity.give_back(lane, execution_id)
            return None
        return Reservation(execution_id, lane, slot, owner)

    def claim_fields(self, job: Job, now: datetime) -> dict[str, object]:
        """The columns of a run inserted RUNNING under this process's claim (as the worker's claim sets them)."""
        return {
            "status": models.RUNNING, "started_at": now, "claimed_by": self.instance_id, "attempts": 1,
            "lease_expires_at": now + timedelta(seconds=self._worker.lease_seconds(job) + LEASE_GRACE_SECONDS),
        }

    def start_reserved(self, reservation: Reservation, job: Job) -> None:
        """Start the run inserted RUNNING (claimed) on the reserved worker and slot; announce its start."""
        self._moves.announce(job.execution_id, models.RUNNING, job, started_at=job.started_at)
        try:
            reservation.lane.pool.submit(self._worker.run, Ticket(job.execution_id, reservation.lane, reservation.slot, job, claimed=True))
        except RuntimeError:
            # the pool shut down in between: the run is ours and RUNNING with no worker; it ends as
            # an engine's death would end it
            self.unreserve(reservation)
            self._moves.move(job.execution_id, models.FAILED, job, finished_at=models.utcnow(), error=INTERRUPTED, lease_expires_at=None)
            return
        self._turns.served(reservation.owner)

    def unreserve(self, reservation: Reservation) -> None:
        """Let go of a reservation not started (the run was queued, refused, or not inserted)."""
        reservation.lane.slots.release(reservation.slot, used=False)
        self._capacity.give_back(reservation.lane, reservation.execution_id)

    def _hand_over(self, lane: Lane, execution_id: str, owner: str | None, job: Job, slot: int | None = None) -> str:
        """Give the run a worker and a slot of lane (slot: one the caller already holds, else one is
        taken here); the worker claims it. "started", "busy" (no worker or slot free) or "held" (this
        process already handed it to a worker). A slot the caller passed is let go of unless started."""
        if not self._capacity.take(lane, execution_id, owner):
            if slot is not None:
                lane.slots.release(slot, used=False)
            return "held" if self._capacity.holds(execution_id) else "busy"
        if slot is None:
            slot = lane.slots.acquire()
        if slot is None:
            self._capacity.give_back(lane, execution_id)
            return "busy"
        try:
            lane.pool.submit(self._worker.run, Ticket(execution_id, lane, slot, job))
        except RuntimeError:
            # the pool shut down in between: the run stays QUEUED for the next start
            lane.slots.release(slot, used=False)
            self._capacity.give_back(lane, execution_id)
            return "busy"
        self._turns.served(owner)
        return "started"

    def _worker_freed(self, outcome: str) -> None:
        if outcome != "ran":
            # the run was taken elsewhere ("lost": look again now) or the database failed the
            # claim ("error": the dispatcher's next tick tries again, not a loop of failures)
            self._dispatcher.news()
            self._dispatcher.backlog = True
            if outcome == "error":
                return
        if self._dispatcher.backlog:
            self._dispatcher.wakeup.set()

    def _left_queued(self, interactive: bool) -> None:
        # the other engine processes' dispatchers hear of it at once (the backbone), not on their tick
        self.wake(interactive)
        if self.backbone is not None:
            self.backbone.queued(interactive)

    @property
    def accepting(self) -> bool:
        return not self._dispatcher.stopping.is_set()

    @property
    def busy(self) -> int:
        """Workers running batch (non-interactive) runs."""
        return self._capacity.busy(self._capacity.lanes[0])

    @property
    def interactive_busy(self) -> int:
        return self._capacity.busy(self._capacity.lanes[1])

    def describe_interactive(self) -> dict[str, int]:
        """The interactive lane, for /health/workers."""
        lane = self._capacity.lanes[1]
        return {"pool_size": lane.workers, "busy": self._capacity.busy(lane), "slots_machine_wide": lane.slots.count}

    def is_running(self, execution_id: str) -> bool:
        """True while this process holds the execution (it will end here, shutdown or not)."""
        return self._capacity.holds(execution_id)

    def reap_abandoned(self) -> int:
        """End FAILED("interrupted") every RUNNING execution whose engine process is gone (app/runner/reaper.py)."""
        return reap_abandoned(self.instance_id, self._capacity.holds, self._moves)

    def begin_shutdown(self) -> None:
        """Stop claiming work at once (new runs get 503); does not wait. Safe from a signal handler."""
        self._dispatcher.stopping.set()
        self._dispatcher.wakeup.set()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop claiming work, and let the runs under way finish; queued ones stay for the next start.

        Interactive runs are the exception: one may wait on a learner for many minutes, past any
        graceful stop, so they end now, FAILED("interrupted") as if the engine had died under them.
        """
        self.begin_shutdown()
        self.controls.stop_interactive(INTERRUPTED)
        if self._dispatcher.thread.is_alive():
            self._dispatcher.thread.join(timeout)
        for lane in self._capacity.lanes:
            lane.pool.shutdown(wait=True)
        self._worker.close()
        if self.backbone is not None:
            # the final events of the runs that just ended reach the other processes first
            self.backbone.close()
        diagnostics = self.app.extensions.get("diagnostics")
        if diagnostics is not None:
            # the pre-started linter sandboxes, and the linters' slot files held open since the first check
            diagnostics.close()
        self.watcher.close(timeout)
        # the warm sandboxes go last: nothing can take one any more
        self.sandbox.close()
        for lane in self._capacity.lanes:
            lane.slots.close()
