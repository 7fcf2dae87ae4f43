"""A worker: the one that claims a run handed to it, executes it (or grades it), and ends it."""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from flask import Flask

from ..controls import Controls
from ..grading.grader import Graded, Grader, Suite
from ..live.backbone import Backbone
from ..output_batching import Flusher, OutputBatcher
from ..sandbox import BY_NAME, Control, Interactivity, Result, Sandbox, SandboxError
from ..sandbox.limits import CANCELLED, INTERRUPTED
from ..storage import models
from ..storage.database import db
from ..storage.models import TestSuite, utcnow
from ..transcript import Transcript
from .capacity import Capacity
from .job import Job, Ticket
from .moves import Moves

log = logging.getLogger(__name__)

# a RUNNING execution whose lease ran out belongs to an engine that died: it ends FAILED
LEASE_GRACE_SECONDS = 10.0


class Worker:
    """Runs tickets on the lanes' threads: claim -> execute -> finish -> end, for every kind of run."""

    def __init__(
        self, app: Flask, sandbox: Sandbox, moves: Moves, capacity: Capacity, controls: Controls,
        interactivity: Interactivity, instance_id: str, freed: Callable[[str], None],
    ) -> None:
        self.app = app
        self.sandbox = sandbox
        self.hub = moves.hub
        self.moves = moves
        self.capacity = capacity
        self.controls = controls
        self.interactivity = interactivity
        self.instance_id = instance_id
        # called as a worker lets go of a run: "ran", "lost" (another took it: runs may be waiting)
        # or "error" (the database failed the claim: the dispatcher's tick tries again)
        self._freed = freed
        # set by the runner: PostgreSQL's LISTEN/NOTIFY or the local sockets (app/live/backbone.py)
        self.backbone: Backbone | None = None
        # set when the engine shuts down: an interactive run claimed from then on ends at once
        self.stopping: Callable[[], bool] = lambda: False
        self._cleared_slots: set[int] = set()
        # one thread publishes every run's held output when its time comes
        self._output_flusher = Flusher()

    def clear_slot_once(self, slot: int) -> None:
        if slot not in self._cleared_slots:
            # the first use in this process: an engine that died may have left a run here
            self.sandbox.clear_slot(slot)
            self._cleared_slots.add(slot)

    def close(self) -> None:
        # every run has ended and published what it held: the flusher has nothing left to do
        self._output_flusher.close()

    def run(self, ticket: Ticket) -> None:
        """Claim the ticket's run, and if this process won it, run it to its end; always lets go of the worker and slot."""
        outcome = "error"
        try:
            with self.app.app_context():
                job, outcome = self._claim(ticket)
                if job is None:
                    return
                try:
                    self.clear_slot_once(ticket.slot)
                    if job.kind == models.GRADE:
                        self._finish_grade(job, self._grade(job, ticket.slot))
                    else:
                        transcript = Transcript(int(self.app.config["INTERACTIVE_TRANSCRIPT_MAX_CHARS"])) if job.interactive else None
                        result = self._execute(job, ticket.slot, transcript)
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
            ticket.lane.slots.release(ticket.slot)
            self.capacity.give_back(ticket.lane, ticket.execution_id)
            self._freed(outcome)

    def _claim(self, ticket: Ticket) -> tuple[Job | None, str]:
        """Move the ticket's run QUEUED -> RUNNING under this process's lease: (job, "ran"), or
        (None, "lost") if another took it, (None, "error") if the database failed the claim."""
        if ticket.claimed:
            # inserted RUNNING under this process's claim (a reserved start)
            self.capacity.claimed(ticket.execution_id)
            return ticket.job, "ran"
        job = ticket.job
        try:
            # on PostgreSQL the UPDATE finds its row FOR UPDATE SKIP LOCKED (models.move): a claim of
            # another instance under way makes this one lose at once, not wait on the lock
            now = utcnow()
            lease = now + timedelta(seconds=self.lease_seconds(job) + LEASE_GRACE_SECONDS)
            # the run is held here (Capacity) since it was handed over: the reaper, on another
            # thread, never sees the row ours and RUNNING while this process does not know it runs it
            if not self.moves.move(
                job.execution_id, models.RUNNING, job, started_at=now, claimed_by=self.instance_id, lease_expires_at=lease
            ):
                return None, "lost"
            return replace(job, started_at=now), "ran"
        except Exception:
            # still QUEUED (or another engine's): the dispatcher will see it
            log.exception("could not claim %s; leaving it to the dispatcher", ticket.execution_id)
            return None, "error"
        finally:
            self.capacity.claimed(ticket.execution_id)
            db.session.remove()

    def lease_seconds(self, job: Job) -> float:
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
        if job.interactive and self.stopping():
            # claimed as the shutdown began, after it stopped the interactive runs it knew: this
            # one would wait on a learner for minutes while the shutdown waits on it
            control.cancel(INTERRUPTED)
        if self.backbone is not None and (job.interactive or not self.backbone.connected):
            # a stop or stdin notified before the run was registered here went unheard: read it once.
            # A batch run takes no stdin, and a stop notified while the backbone listens is remembered
            # (Controls.register); one lost with a connection is read by the watcher's next tick
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
        try:
            self._end_grade(job, graded)
        finally:
            # the learner's sandbox ends after the final result is written and published: its
            # teardown is off the path to the answer (the slot is still this worker's)
            graded.release()

    def _end_grade(self, job: Job, graded: Graded) -> None:
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
        self.moves.move(job.execution_id, status, job, retry_seconds, finished_at=utcnow(), lease_expires_at=None, **fields)
