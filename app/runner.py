"""The bounded run pool: claims QUEUED executions from the database and drives each to a terminal state."""
from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import psutil
from flask import Flask
from sqlalchemy import func, or_, select

from . import metrics, models, retention
from .backbone import Backbone
from .controls import Controls
from .events import Hub
from .extensions import db
from .grading.grader import Graded, Grader, Suite
from .models import Execution, TestSuite, move, utcnow
from .output_batching import Flusher, OutputBatcher
from .sandbox import BY_NAME, Control, Interactivity, Limits, Result, Sandbox, SandboxError
from .sandbox.limits import CANCELLED, INTERRUPTED
from .slots import INTERACTIVE_SLOT_FIRST, SlotPool
from .transcript import Transcript

log = logging.getLogger(__name__)

# how often the dispatcher looks at the database without being woken: executions queued by
# another process, or left behind by one that died, are seen within this
DISPATCH_TICK_SECONDS = 0.5
# a RUNNING execution whose lease ran out belongs to an engine that died: it ends FAILED
LEASE_GRACE_SECONDS = 10.0
REAP_EVERY_SECONDS = 2.0
CLAIM_BATCH = 16
# the round-robin forgets clients it served longer ago than this, once it remembers this many
SERVED_MEMORY = 10_000
SERVED_FORGET_SECONDS = 600.0
# ids per watcher query (SQLite allows a few thousand bound parameters)
WATCH_BATCH = 500
SELF_TEST_SLOT_WAIT_SECONDS = 10.0


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

    @classmethod
    def of(cls, execution: Execution) -> Job:
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
        # workers taken; guarded by the runner's _busy_lock
        self.busy = 0


class Runner:
    def __init__(self, app: Flask, sandbox: Sandbox, hub: Hub) -> None:
        self.app = app
        self.sandbox = sandbox
        self.hub = hub
        config = app.config
        self.workers = int(config["RUN_WORKERS"])
        self.slots = SlotPool(config["SLOT_LOCK_DIR"], int(config["RUN_SLOTS"]), keep_seconds=float(config["RUN_SLOT_KEEP_SECONDS"]))
        interactive_slots = SlotPool(config["SLOT_LOCK_DIR"], int(config["INTERACTIVE_RUN_SLOTS"]), first=INTERACTIVE_SLOT_FIRST)
        self._lanes = (
            Lane(False, self.workers, self.slots),
            Lane(True, int(config["INTERACTIVE_RUN_WORKERS"]), interactive_slots),
        )
        self.interactivity = Interactivity(
            input_idle_seconds=float(config["INTERACTIVE_INPUT_IDLE_SECONDS"]),
            total_seconds=float(config["INTERACTIVE_TIME_LIMIT_SECONDS"]),
        )
        # stop and stdin requests for the runs in flight here
        self.controls = Controls()
        # PostgreSQL's LISTEN/NOTIFY between engine processes (app/backbone.py), set by create_app
        self.backbone: Backbone | None = None
        self.instance_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._busy_lock = threading.Lock()
        self._wake = threading.Event()
        # True while runs may be QUEUED that this process has not looked at: only then does a
        # worker that frees up wake the dispatcher (otherwise the tick finds other engines' runs)
        self._backlog = True
        self._stopping = threading.Event()
        self._cleared_slots: set[int] = set()
        self._last_reap = 0.0
        self._last_prune = 0.0
        # when this process last started a run of each client: the round-robin's memory
        self._served: dict[str | None, float] = {}
        # executions this process is claiming or running now: the reaper leaves exactly these
        # alone, and a second claimer in this process (dispatcher and direct start) backs off
        self._inflight: set[str] = set()
        # executions someone in this process long-polls for, and how many wait on each
        self._watched: Counter[str] = Counter()
        self._announced: set[str] = set()
        self._watch_lock = threading.Lock()
        self._watcher_stop = threading.Event()
        # one thread publishes every run's held output when its time comes
        self._output_flusher = Flusher()
        self._dispatcher = threading.Thread(target=self._dispatch_forever, name="dispatcher", daemon=True)
        self._watcher = threading.Thread(target=self._watch_forever, name="watcher", daemon=True)

    def start(self) -> None:
        """Prove the sandbox works (or record why not), then start claiming work."""
        deadline = time.monotonic() + SELF_TEST_SLOT_WAIT_SECONDS
        slot = self.slots.acquire()
        while slot is None and time.monotonic() < deadline:
            time.sleep(0.05)
            slot = self.slots.acquire()
        if slot is not None:
            try:
                self.sandbox.clear_slot(slot)
                self._cleared_slots.add(slot)
                self.sandbox.self_test(slot)
            finally:
                self.slots.release(slot)
        self._dispatcher.start()
        self._watcher.start()

    def wake(self) -> None:
        """Tell the dispatcher there may be work: a run was queued that no worker took at once."""
        self._backlog = True
        self._wake.set()

    def offer(self, execution: Execution, others_waiting: bool) -> None:
        """Start a just-queued execution on a free worker at once, or leave it to the dispatcher.

        Only when nothing else waits (so the round-robin has nothing to decide) and a worker and a
        slot are free: the run then starts without waiting for the dispatcher to wake and look.
        """
        lane = self._lane(bool(execution.interactive))
        if others_waiting or not self.accepting or not self._dispatcher.is_alive() or not self._reserve_worker(lane):
            self._left_queued()
            return
        slot = lane.slots.acquire()
        if slot is None:
            self._release_worker(lane)
            self._left_queued()
            return
        try:
            lane.pool.submit(self._run, Job.of(execution), slot, True, lane)
        except RuntimeError:
            # the pool shut down in between: the run stays QUEUED for the next start
            lane.slots.release(slot)
            self._release_worker(lane)
            return
        self._note_served(execution.owner)

    def _left_queued(self) -> None:
        # the other engine processes' dispatchers hear of it at once (the backbone), not on their tick
        self.wake()
        if self.backbone is not None:
            self.backbone.queued()

    @property
    def accepting(self) -> bool:
        return not self._stopping.is_set()

    @property
    def busy(self) -> int:
        """Workers running batch (non-interactive) runs."""
        with self._busy_lock:
            return self._lanes[0].busy

    @property
    def interactive_busy(self) -> int:
        with self._busy_lock:
            return self._lanes[1].busy

    def describe_interactive(self) -> dict[str, int]:
        """The interactive lane, for /health/workers."""
        lane = self._lanes[1]
        with self._busy_lock:
            busy = lane.busy
        return {"pool_size": lane.workers, "busy": busy, "slots_machine_wide": lane.slots.count}

    def _lane(self, interactive: bool) -> Lane:
        return self._lanes[1] if interactive else self._lanes[0]

    def is_running(self, execution_id: str) -> bool:
        """True while this process runs the execution (it will end here, shutdown or not)."""
        with self._busy_lock:
            return execution_id in self._inflight

    def begin_shutdown(self) -> None:
        """Stop claiming work at once (new runs get 503); does not wait. Safe from a signal handler."""
        self._stopping.set()
        self._wake.set()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop claiming work, and let the runs under way finish; queued ones stay for the next start.

        Interactive runs are the exception: one may wait on a learner for many minutes, past any
        graceful stop, so they end now, FAILED("interrupted") as if the engine had died under them.
        """
        self.begin_shutdown()
        self.controls.stop_interactive(INTERRUPTED)
        if self._dispatcher.is_alive():
            self._dispatcher.join(timeout)
        for lane in self._lanes:
            lane.pool.shutdown(wait=True)
        # every run has ended and published what it held: the flusher has nothing left to do
        self._output_flusher.close()
        if self.backbone is not None:
            # the final events of the runs that just ended reach the other processes first
            self.backbone.close()
        diagnostics = self.app.extensions.get("diagnostics")
        if diagnostics is not None:
            # the linters' slot files, held open since the first check
            diagnostics.slots.close()
        self._watcher_stop.set()
        if self._watcher.is_alive():
            self._watcher.join(timeout)
        # the warm sandboxes go last: nothing can take one any more
        self.sandbox.close()
        for lane in self._lanes:
            lane.slots.close()

    @contextmanager
    def watch(self, execution_id: str) -> Iterator[None]:
        """While inside, a "final" event is published here when another process finishes the execution."""
        with self._watch_lock:
            self._watched[execution_id] += 1
        try:
            yield
        finally:
            with self._watch_lock:
                self._watched[execution_id] -= 1
                if self._watched[execution_id] <= 0:
                    del self._watched[execution_id]
                    self._announced.discard(execution_id)

    def _watch_forever(self) -> None:
        tick = float(self.app.config["LONG_POLL_RECHECK_SECONDS"])
        # with the backbone up, other processes' ends, stops and stdin arrive as notifications: the
        # database is read only as a slow fallback (a notification lost with a connection)
        fallback = float(self.app.config["BACKBONE_FALLBACK_SECONDS"])
        while not self._watcher_stop.wait(fallback if self.backbone is not None and self.backbone.connected else tick):
            with self._watch_lock:
                ids = [i for i in self._watched if i not in self._announced]
            # stop and stdin requests other processes stored for the runs in flight here
            relay = len(self.controls) > 0
            if not ids and not relay:
                continue
            try:
                with self.app.app_context():
                    try:
                        if relay:
                            self.controls.relay()
                        if ids:
                            self._announce_finished(ids)
                    finally:
                        db.session.remove()
            except Exception:
                # waiters fall back to reading the database themselves; try again next tick
                log.exception("watcher failed; retrying on the next tick")

    def _announce_finished(self, ids: list[str]) -> None:
        """One query for every waiter in this process: publish "final" for those another process ended."""
        for start in range(0, len(ids), WATCH_BATCH):
            rows = db.session.execute(
                select(Execution.id, Execution.status).where(
                    Execution.id.in_(ids[start : start + WATCH_BATCH]),
                    Execution.status.in_(models.TERMINAL),
                    # this process's own runs publish their end themselves
                    or_(Execution.claimed_by.is_(None), Execution.claimed_by != self.instance_id),
                )
            ).all()
            for execution_id, status in rows:
                with self._watch_lock:
                    if execution_id not in self._watched:
                        continue
                    self._announced.add(execution_id)
                self.hub.publish(execution_id, "final", status)

    def _dispatch_forever(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(DISPATCH_TICK_SECONDS)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                with self.app.app_context():
                    self._reap_if_due()
                    self._prune_if_due()
                    self._dispatch()
            except Exception:
                # the dispatcher must outlive any one bad moment of the database
                log.exception("dispatch failed; retrying on the next tick")
            finally:
                with self.app.app_context():
                    db.session.remove()

    def _reserve_worker(self, lane: Lane | None = None) -> bool:
        lane = lane or self._lanes[0]
        with self._busy_lock:
            if lane.busy >= lane.workers:
                return False
            lane.busy += 1
            return True

    def _release_worker(self, lane: Lane | None = None, execution_id: str | None = None) -> None:
        lane = lane or self._lanes[0]
        with self._busy_lock:
            lane.busy -= 1
            self._inflight.discard(execution_id)
        if self._backlog:
            self._wake.set()

    def _dispatch(self) -> None:
        # both lanes, always: a lane with nothing to claim must not stop the other
        waiting = [self._dispatch_lane(lane) for lane in self._lanes]
        self._backlog = any(waiting)

    def _dispatch_lane(self, lane: Lane) -> bool:
        """Claim and start the lane's runs while it has workers and slots; True if runs may still be waiting."""
        while not self._stopping.is_set():
            if not self._reserve_worker(lane):
                # runs may be waiting: look again as soon as a worker is free
                return True
            slot = lane.slots.acquire()
            job = None
            try:
                job = self._claim_next(lane.interactive) if slot is not None else None
            finally:
                if job is None:
                    # nothing claimed, or the database failed us (retried next tick): give back
                    # what was taken, without waking the dispatcher for it
                    if slot is not None:
                        lane.slots.release(slot)
                    with self._busy_lock:
                        lane.busy -= 1
            if job is None:
                # with a slot and nothing claimed, nothing waits: a worker that frees up need not
                # wake the dispatcher; without a slot, runs may be waiting for one
                return slot is None
            lane.pool.submit(self._run, job, slot, False, lane)
        return False

    def _claim_next(self, interactive: bool = False) -> Job | None:
        """Claim the next execution, fairly: round-robin over the clients (sessions, one-shot addresses).

        The client with the fewest runs RUNNING goes first; among equals, the one this process
        served longest ago; each client's runs keep their order. A session that queued fifty runs
        takes turns with a session that queued one, even when only one slot is free.
        """
        of_lane = Execution.interactive.is_(True) if interactive else Execution.interactive.is_(False)
        waiting = db.session.execute(
            select(Execution.owner, func.min(Execution.queued_at))
            .where(Execution.status == models.QUEUED, of_lane)
            .group_by(Execution.owner)
        ).all()
        if not waiting:
            db.session.rollback()
            return None
        running = dict(
            db.session.execute(
                select(Execution.owner, func.count()).where(Execution.status == models.RUNNING).group_by(Execution.owner)
            ).all()
        )
        turns = sorted(waiting, key=lambda row: (running.get(row[0], 0), self._served.get(row[0], 0.0), row[1]))
        for owner, _ in turns[:CLAIM_BATCH]:
            of_owner = Execution.owner.is_(None) if owner is None else Execution.owner == owner
            candidates = db.session.scalars(
                select(Execution.id)
                .where(Execution.status == models.QUEUED, of_owner, of_lane)
                .order_by(Execution.queued_at)
                .limit(2)
            ).all()
            for execution_id in candidates:
                job = self._claim(execution_id)
                if job is not None:
                    self._note_served(owner)
                    return job
        return None

    def _claim(self, execution_id: str) -> Job | None:
        # PostgreSQL: the row stays locked until the claim's UPDATE commits, and a dispatcher of
        # another instance skips it (FOR UPDATE SKIP LOCKED) instead of queueing behind the lock
        postgres = db.engine.dialect.name == "postgresql"
        execution = db.session.get(Execution, execution_id, with_for_update={"skip_locked": True} if postgres else None)
        if execution is None or execution.status != models.QUEUED:
            db.session.rollback()
            return None
        job = Job.of(execution)
        if not postgres:
            db.session.rollback()
        return self._mark_running(job)

    def _mark_running(self, job: Job) -> Job | None:
        """Move the job's execution QUEUED -> RUNNING under this process's lease; None if another took it."""
        now = utcnow()
        lease = now + timedelta(seconds=self._lease_seconds(job) + LEASE_GRACE_SECONDS)
        # in flight before the row says RUNNING: the reaper, on another thread, must never see
        # the row ours and RUNNING while this process does not yet know it runs it. Only one
        # thread here claims a given run (the dispatcher may have read it QUEUED while a direct
        # start claims it); the entry is that thread's, and only it removes it.
        with self._busy_lock:
            if job.execution_id in self._inflight:
                return None
            self._inflight.add(job.execution_id)
        claimed = False
        try:
            claimed = move(
                job.execution_id, models.RUNNING, started_at=now, claimed_by=self.instance_id, lease_expires_at=lease
            )
        finally:
            if not claimed:
                with self._busy_lock:
                    self._inflight.discard(job.execution_id)
        if not claimed:
            return None
        self.hub.publish(job.execution_id, "status", models.RUNNING)
        job = replace(job, started_at=now)
        metrics.execution_moved(job.execution_id, models.RUNNING, job.moved())
        return job

    def _lease_seconds(self, job: Job) -> float:
        """How long a claim of job is good for: its run (a graded run: its whole suite; an interactive
        run: its whole-length limit, since it may wait for input far past its wall limit) and its
        compile step where it has one (Rust's, Go's and C#'s may take 30 s), so that no other engine
        takes a long compile for a dead one."""
        language = BY_NAME.get(job.language)
        compile_seconds = 0.0
        if language is not None and language.compile:
            compile_seconds = self.sandbox.settings.compile_limits.raised(language.compile_limit_overrides).timeout_seconds
        if job.kind == models.GRADE:
            config = self.app.config
            grading = float(config["GRADE_MAX_TOTAL_TIME_LIMIT_MS"]) / 1000 + float(config["GRADE_CHECKER_TOTAL_SECONDS"])
            return grading + compile_seconds
        if job.interactive:
            return self.interactivity.total_seconds + compile_seconds
        return job.limits.timeout_seconds + compile_seconds

    def _note_served(self, owner: str | None) -> None:
        now = time.monotonic()
        self._served[owner] = now
        if len(self._served) > SERVED_MEMORY:
            # forget clients served long ago: they would go first anyway
            self._served = {o: t for o, t in self._served.items() if now - t < SERVED_FORGET_SECONDS}

    def _run(self, job: Job, slot: int, claim: bool = False, lane: Lane | None = None) -> None:
        """Run a claimed job in slot of lane (the batch lane by default) to its end (claim=True: claim it first, and let it go if taken)."""
        lane = lane or self._lane(job.interactive)
        ours = not claim
        try:
            with self.app.app_context():
                if claim:
                    claimed = self._claimed_here(job)
                    if claimed is None:
                        return
                    job, ours = claimed, True
                try:
                    if slot not in self._cleared_slots:
                        # the first use in this process: an engine that died may have left a run here
                        self.sandbox.clear_slot(slot)
                        self._cleared_slots.add(slot)
                    if job.kind == models.GRADE:
                        self._finish_grade(job, self._grade(job, slot))
                    else:
                        transcript = Transcript(int(self.app.config["INTERACTIVE_TRANSCRIPT_MAX_CHARS"])) if job.interactive else None
                        result = self._execute(job, slot, transcript)
                        self._finish(job, result, transcript)
                except SandboxError as error:
                    log.error("sandbox failure on %s: %s", job.execution_id, error)
                    self._fail(job, "sandbox_error", str(error))
                except Exception:
                    log.exception("internal error running %s", job.execution_id)
                    self._fail(job, "internal_error", "")
                finally:
                    db.session.remove()
        finally:
            lane.slots.release(slot)
            # a claim lost to another thread here leaves that thread's in-flight entry alone
            self._release_worker(lane, job.execution_id if ours else None)

    def _claimed_here(self, job: Job) -> Job | None:
        try:
            return self._mark_running(job)
        except Exception:
            # still QUEUED (or another engine's): the dispatcher will see it
            log.exception("could not claim %s; leaving it to the dispatcher", job.execution_id)
            return None
        finally:
            db.session.remove()

    def _execute(self, job: Job, slot: int, transcript: Transcript | None = None) -> Result:
        language = BY_NAME.get(job.language)
        if language is None or not language.is_installed():
            raise SandboxError(f"language {job.language!r} is no longer installed")

        def publish(kind: str, data: object) -> None:
            self.hub.publish(job.execution_id, kind, data)

        # stdout and stderr coalesced into events of bounded rate and size; stdin and stdin_wanted
        # go at once, after the output held before them (a prompt is shown before the wait for it)
        output = OutputBatcher(
            publish,
            self._output_flusher,
            float(self.app.config["OUTPUT_FLUSH_SECONDS"]),
            int(self.app.config["OUTPUT_EVENT_MAX_CHARS"]),
        )

        def on_output(stream: str, text: str) -> None:
            # stdout, stderr, and for interactive runs stdin (as it reaches the program) and stdin_wanted
            if stream in ("stdout", "stderr"):
                output.add(stream, text)
            else:
                output.event(stream, text)
            if transcript is not None:
                transcript.add(stream, text)

        control = Control(self.interactivity if job.interactive else None)
        if job.interactive and job.stdin:
            # the run request's stdin is the first thing the program reads
            on_output("stdin", job.stdin)
        files = {name: content.encode() for name, content in job.files.items()}
        self.controls.register(job.execution_id, control)
        if job.interactive and self._stopping.is_set():
            # claimed as the shutdown began, after it stopped the interactive runs it knew: this
            # one would wait on a learner for minutes while the shutdown waits on it
            control.cancel(INTERRUPTED)
        if self.backbone is not None:
            # a stop or stdin notified before the run was registered here went unheard: read it once
            self.controls.relay([job.execution_id])
        try:
            return self.sandbox.run(
                language, job.source_code.encode(), job.stdin.encode(), job.limits, slot, on_output, files, job.args,
                control,
            )
        finally:
            # the held tail goes out before the run's final event
            output.close()
            self.controls.unregister(job.execution_id)
            control.close()

    def _grade(self, job: Job, slot: int) -> Graded:
        language = BY_NAME.get(job.language)
        if language is None or not language.is_installed():
            raise SandboxError(f"language {job.language!r} is no longer installed")
        row = db.session.get(TestSuite, job.test_suite_id)
        if row is None:
            raise SandboxError(f"test suite {job.test_suite_id} no longer exists")
        suite = Suite.stored(row.checker, row.time_limit_ms, row.memory_limit_bytes, row.total_time_limit_ms, row.cases)
        # the worker holds no database connection while the cases run
        db.session.remove()
        config = self.app.config

        def on_test(test: dict) -> None:
            # already public: a hidden case's input and output never reach an event
            self.hub.publish(job.execution_id, "test_result", test)

        checker_limits = job.limits.with_overrides(
            timeout_seconds=float(config["GRADE_CHECKER_TIMEOUT_SECONDS"]),
            cpu_seconds=math.ceil(float(config["GRADE_CHECKER_TIMEOUT_SECONDS"])),
            memory_bytes=int(config["RUN_MEMORY_BYTES"]),
        )
        # a stop (POST cancel, here or relayed from another process) ends the case under way and the rest
        control = Control()
        grader = Grader(
            self.sandbox, language, job.source_code.encode(), suite, job.limits, slot, on_test,
            int(config["GRADE_SHOWN_OUTPUT_BYTES"]), checker_limits, control,
            float(config["GRADE_CHECKER_TOTAL_SECONDS"]),
        )
        self.controls.register(job.execution_id, control)
        if self.backbone is not None:
            # a stop notified before the run was registered here went unheard: read it once
            self.controls.relay([job.execution_id])
        try:
            return grader.grade()
        finally:
            self.controls.unregister(job.execution_id)
            control.close()

    def _finish_grade(self, job: Job, graded: Graded) -> None:
        grade = json.dumps(graded.grade.as_dict())
        if graded.cancelled:
            self._end(
                job, models.FAILED, error=CANCELLED, execution_time_ms=graded.duration_ms,
                compile_time_ms=graded.compile_ms, grade=grade, exit_code=None,
            )
            return
        if graded.compile_failure is not None:
            failure = graded.compile_failure
            self._end(
                job, models.FAILED, error=failure.reason, stderr=failure.stderr, stdout="",
                compile_time_ms=graded.compile_ms, grade=grade,
            )
            return
        self._end(
            job, models.COMPLETED, execution_time_ms=graded.duration_ms, compile_time_ms=graded.compile_ms,
            grade=grade, exit_code=None,
        )

    def _finish(self, job: Job, result: Result, transcript: Transcript | None = None) -> None:
        if result.reason is None:
            status = models.COMPLETED
        elif result.timed_out:
            status = models.TIMEOUT
        else:
            status = models.FAILED
        self._end(
            job,
            status,
            stdout=result.stdout,
            stderr=result.stderr,
            exit_code=result.exit_code,
            execution_time_ms=result.duration_ms,
            compile_time_ms=result.compile_ms,
            stdout_truncated=result.stdout_truncated,
            stderr_truncated=result.stderr_truncated,
            error=result.reason,
            **({"transcript": transcript.as_json()} if transcript is not None else {}),
        )

    def _fail(self, job: Job, error: str, message: str) -> None:
        self._end(job, models.FAILED, error=error, stderr=message)

    def _end(self, job: Job, status: str, **fields: object) -> None:
        retry_seconds = float(self.app.config["RUNNER_DATABASE_RETRY_SECONDS"])
        if move(job.execution_id, status, retry_seconds, finished_at=utcnow(), lease_expires_at=None, **fields):
            self.hub.publish(job.execution_id, "final", status)
            known = {name: fields[name] for name in metrics.Moved._fields if name in fields}
            metrics.execution_moved(job.execution_id, status, job.moved(**known))

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
        self.reap_abandoned()

    def reap_abandoned(self) -> int:
        """End FAILED("interrupted") every RUNNING execution whose engine process is gone.

        Not re-run: a program that takes its engine down with it would otherwise do so at every
        restart; the client sees why and can run it again (docs/reliability.md).
        """
        now = utcnow()
        rows = db.session.execute(
            select(Execution.id, Execution.claimed_by, Execution.lease_expires_at).where(
                Execution.status == models.RUNNING
            )
        ).all()
        db.session.rollback()
        reaped = 0
        for execution_id, claimed_by, lease in rows:
            if claimed_by == self.instance_id:
                # ours but no longer running here: its result could not be written
                if self.is_running(execution_id):
                    continue
            elif not ((lease is not None and lease < now) or _claimer_is_dead(claimed_by)):
                continue
            if move(execution_id, models.FAILED, finished_at=now, error=INTERRUPTED, lease_expires_at=None):
                self.hub.publish(execution_id, "final", models.FAILED)
                metrics.execution_moved(execution_id, models.FAILED)
                reaped += 1
        if reaped:
            log.warning("ended %d executions interrupted by an engine that stopped", reaped)
        return reaped


def _claimer_is_dead(claimed_by: str | None) -> bool:
    """True when the claiming engine process ran on this host and no longer exists."""
    if not claimed_by:
        return True
    host, _, rest = claimed_by.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    return not psutil.pid_exists(int(pid_text))
