"""The grader: owns the per-case loop of a graded run, from compile to the overall verdict.

Plain data in (a Suite), plain data out (a Grade); no Flask, no database. Cases run one after
another in one sandbox start (app/sandbox/grading.py); each is judged here, outside the sandbox,
so expected outputs never enter it. `on_test` hears each case's public result as it is decided.
"""
from __future__ import annotations

import json
import logging
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..sandbox import Control, Language, Limits, Result, Sandbox, SandboxError
from ..sandbox.grading import CaseOutcome, SentCase, Supervisor, SupervisorLost
from . import checkers, program_checker, verdicts
from .checkers import Check

log = logging.getLogger(__name__)

# a case whose supervisor died is retried once in a fresh sandbox only if it never started
RESTARTS_PER_CASE = 1
# a sandbox start can be refused by a busy host once; twice is a broken sandbox (sandbox_error)
START_ATTEMPTS = 2
STDERR_SHOWN_CHARS = 2000


@dataclass(frozen=True)
class Case:
    name: str
    stdin: str
    expected_output: str
    hidden: bool = False
    points: float = 1.0
    group: str | None = None


@dataclass(frozen=True)
class Suite:
    checker: dict
    time_limit_ms: int
    memory_limit_bytes: int | None
    total_time_limit_ms: int
    cases: tuple[Case, ...]

    @classmethod
    def stored(cls, checker: str, time_limit_ms: int, memory_limit_bytes: int | None, total_time_limit_ms: int, cases: str) -> Suite:
        """A suite from the columns the database keeps (checker and cases as JSON text)."""
        return cls(
            json.loads(checker), time_limit_ms, memory_limit_bytes, total_time_limit_ms,
            tuple(
                Case(c["name"], c["stdin"], c["expected_output"], c["hidden"], c["points"], c.get("group"))
                for c in json.loads(cases)
            ),
        )


@dataclass
class Grade:
    verdict: str = verdicts.SKIPPED
    score: float = 0.0
    max_score: float = 0.0
    passed: int = 0
    total: int = 0
    complete: bool = False
    tests: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "verdict": self.verdict, "score": self.score, "max_score": self.max_score, "passed": self.passed,
            "total": self.total, "complete": self.complete, "tests": self.tests,
        }


@dataclass(frozen=True)
class Graded:
    grade: Grade
    # the compile step's failure (the execution ends FAILED compile_error), else None
    compile_failure: Result | None
    compile_ms: int | None
    # wall time of all the cases together
    duration_ms: int
    # stopped by POST cancel: the cases not judged by then are SKIPPED
    cancelled: bool = False
    # ends the learner's sandbox (kept until the final result is written) and lets the compiled
    # artifact go; idempotent
    release: Callable[[], None] = field(default=lambda: None, compare=False, repr=False)


TestListener = Callable[[dict], None]


def public(test: dict) -> dict:
    """What anyone may see of a case's result: a hidden case keeps only its verdict and numbers."""
    if not test["hidden"]:
        return test
    kept = ("index", "name", "hidden", "verdict", "points", "max_points", "time_ms", "memory_bytes")
    return {**{key: test[key] for key in kept}, "message": verdicts.GENERIC_MESSAGES[test["verdict"]]}


class Grader:
    """Grades one program against one suite in one worker slot."""

    def __init__(
        self,
        sandbox: Sandbox,
        language: Language,
        source: bytes,
        suite: Suite,
        limits: Limits,
        slot: int,
        on_test: TestListener,
        shown_output_bytes: int,
        checker_limits: Limits,
        control: Control | None = None,
        checker_total_seconds: float = 60.0,
    ) -> None:
        self.sandbox = sandbox
        # a cancel arrives here from another thread: it ends the case under way and the rest
        self.control = control
        self._supervisor: Supervisor | None = None
        # the compiled program, held until release()
        self._artifact = None
        if control is not None:
            control.when_cancelled(self._stop_now)
        self.language = language
        self.source = source
        self.suite = suite
        self.slot = slot
        self.on_test = on_test
        self.shown_output_bytes = shown_output_bytes
        self.checker_limits = checker_limits
        self.checker_total_seconds = checker_total_seconds
        self.case_seconds = suite.time_limit_ms / 1000
        self.total_seconds = suite.total_time_limit_ms / 1000
        memory = suite.memory_limit_bytes or limits.memory_bytes
        # the sandbox lives as long as the whole suite may; each case has its own wall and CPU limit
        self.limits = limits.with_overrides(
            timeout_seconds=self.total_seconds, cpu_seconds=math.ceil(self.total_seconds) + 1, memory_bytes=memory
        )
        self.checker_type = suite.checker.get("type", checkers.DEFAULT)

    def grade(self) -> Graded:
        """Grade the program. The learner's sandbox is left open, for the final result to be written
        first: the caller ends it with the Graded's release() (at once on an error here)."""
        try:
            graded = self._grade()
        except BaseException:
            self.release()
            raise
        return replace(graded, release=self.release)

    def _grade(self) -> Graded:
        compile_ms = None
        if self.language.compile:
            artifact, compile_ms, failure = self.sandbox.compiled(self.language, self.source, self.slot, control=self.control)
            self._artifact = artifact
            if failure is not None:
                why = "Not run: the run was cancelled" if self.cancelled else "Not run: the program did not compile"
                tests = [self._skipped(index, case, why) for index, case in enumerate(self.suite.cases)]
                for test in tests:
                    self.on_test(public(test))
                if self.cancelled:
                    return Graded(self._summary(tests, complete=False), None, compile_ms, 0, cancelled=True)
                return Graded(self._summary(tests, complete=False), failure, compile_ms, 0)
        started = time.monotonic()
        tests, to_check = self._run_cases(self._artifact.path if self._artifact else None, started)
        # a program checker needs the slot the learner's sandbox held: it runs once all cases ran
        checking_ends = time.monotonic() + self.checker_total_seconds
        for index, outcome in to_check:
            if self.cancelled:
                tests[index] = self._skipped(index, self.suite.cases[index], "Not run: the run was cancelled")
            elif time.monotonic() >= checking_ends:
                tests[index] = self._skipped(index, self.suite.cases[index], "Not judged: the checker's time ran out")
            else:
                tests[index] = self._checked_by_program(index, self.suite.cases[index], outcome)
            self.on_test(public(tests[index]))
        complete = all(test["verdict"] != verdicts.SKIPPED for test in tests)
        duration_ms = int((time.monotonic() - started) * 1000)
        return Graded(self._summary(tests, complete), None, compile_ms, duration_ms, cancelled=self.cancelled)

    @property
    def cancelled(self) -> bool:
        return self.control is not None and self.control.cancelled

    def _stop_now(self) -> None:
        # the cancelling thread: the case under way ends (its supervisor's sandbox dies), and the
        # loop skips the rest
        supervisor = self._supervisor
        if supervisor is not None:
            supervisor.kill()

    def _run_cases(self, build_dir: object, started: float) -> tuple[list[dict], list[tuple[int, CaseOutcome]]]:
        """Run every case, each judged and published as it ends. The next case is handed to the
        supervisor as soon as the one before has ended (its report read: the supervisor swept it
        away before reporting) and before that one is judged and published: the engine's part of a
        case overlaps the sandbox's part of the next one."""
        tests: list[dict] = []
        to_check: list[tuple[int, CaseOutcome]] = []
        cases = self.suite.cases
        # the case already handed to the supervisor, or why it was not run; None: not tried yet
        ahead: SentCase | str | None = None
        try:
            for index, case in enumerate(cases):
                sent = ahead if ahead is not None else self._send(index, case, build_dir, started)
                ahead = None
                if isinstance(sent, str):
                    test = self._skipped(index, case, f"Not run: {sent}")
                    tests.append(test)
                    self.on_test(public(test))
                    continue
                outcome = self._supervisor.collect(sent) if sent is not None else None
                if self.cancelled:
                    test = self._skipped(index, case, "Not run: the run was cancelled")
                    tests.append(test)
                    self.on_test(public(test))
                    continue
                if index + 1 < len(cases):
                    # into this supervisor only: a fresh sandbox (this one died) starts after this
                    # case is published, at the next case's turn
                    ahead = self._send(index + 1, cases[index + 1], build_dir, started, fresh=False)
                if outcome is None:
                    outcome = CaseOutcome(None, signal.SIGKILL, b"", b"", 0, 0, 0, supervisor_lost=True)
                failed = self._limit_verdict(outcome)
                if failed is None and self.checker_type == checkers.PROGRAM:
                    tests.append({})
                    to_check.append((index, outcome))
                    continue
                test = self._judged(index, case, outcome, failed)
                tests.append(test)
                self.on_test(public(test))
        except BaseException:
            if isinstance(ahead, SentCase):
                ahead.close()
            self.release()
            raise
        if self.checker_type == checkers.PROGRAM:
            # a program checker runs in this slot: the learner's sandbox goes first
            self.release()
        return tests, to_check

    def _send(self, index: int, case: Case, build_dir: object, started: float, fresh: bool = True) -> SentCase | str | None:
        """Hand case to the supervisor (a fresh one if there is none or it died, when fresh): the case
        sent, why it is not run (cancelled, out of total time), or None when two sandboxes in a row
        died before it (or, not fresh, when this one is gone)."""
        remaining = self.total_seconds - (time.monotonic() - started)
        if self.cancelled or remaining <= 0:
            return "the run was cancelled" if self.cancelled else "the suite's total time limit was reached"
        for _ in range(1 + RESTARTS_PER_CASE):
            supervisor = self._supervisor
            if not fresh and (supervisor is None or not supervisor.alive):
                return None
            if supervisor is None or not supervisor.alive:
                if supervisor is not None:
                    supervisor.close()
                supervisor = self._supervisor = self._start_supervisor(build_dir)
                if self.cancelled:
                    # the cancel came while it started: nothing killed it
                    supervisor.kill()
            try:
                return supervisor.send(
                    index, case.stdin.encode(), min(self.case_seconds, remaining), math.ceil(self.case_seconds),
                    self.limits.output_bytes,
                )
            except SupervisorLost:
                if self.cancelled:
                    return "the run was cancelled"
                # it died between cases (never while this one ran): a fresh sandbox runs it
                continue
        return None

    def release(self) -> None:
        """End the learner's sandbox and let the compiled artifact go (once; any thread that owns the
        grade). Left open by grade() so that the final result is written first: the worker releases it."""
        supervisor, self._supervisor = self._supervisor, None
        try:
            if supervisor is not None:
                supervisor.close()
        finally:
            artifact, self._artifact = self._artifact, None
            if artifact is not None:
                # eviction may take it from now on
                artifact.release()

    def _start_supervisor(self, build_dir: object) -> Supervisor:
        """A fresh sandbox with its supervisor; a start refused once (a busy host) is tried again."""
        for attempt in range(START_ATTEMPTS):
            try:
                return Supervisor(self.sandbox, self.language, self.limits, self.slot, self.source, build_dir)
            except SandboxError:
                if attempt == START_ATTEMPTS - 1:
                    raise
                log.warning("a test supervisor did not start; trying once more")
        raise AssertionError("unreachable")

    def _limit_verdict(self, outcome: CaseOutcome) -> tuple[str, str] | None:
        """(verdict, message) when the program did not get to an answer; None when its output is to be checked."""
        if outcome.oom_killed or self._said_out_of_memory(outcome):
            return verdicts.MEMORY_LIMIT, "Memory limit exceeded"
        if outcome.supervisor_lost:
            return verdicts.RUNTIME_ERROR, "The program ended its test supervisor"
        cpu_limit_ms = math.ceil(self.case_seconds) * 1000
        if outcome.timed_out or outcome.signal == signal.SIGXCPU or (
            outcome.signal == signal.SIGKILL and outcome.cpu_ms >= cpu_limit_ms
        ):
            return verdicts.TIME_LIMIT, f"Time limit exceeded ({self.suite.time_limit_ms} ms)"
        if outcome.output_exceeded:
            return verdicts.OUTPUT_LIMIT, f"Output limit exceeded ({self.limits.output_bytes} bytes)"
        if outcome.signal is not None:
            return verdicts.RUNTIME_ERROR, f"The program was killed by signal {outcome.signal}"
        if outcome.exit_code != 0:
            return verdicts.RUNTIME_ERROR, f"The program exited with code {outcome.exit_code}"
        return None

    def _said_out_of_memory(self, outcome: CaseOutcome) -> bool:
        if outcome.exit_code == 0 and outcome.signal is None:
            return False
        tail = outcome.stderr[-2000:].decode("utf-8", errors="replace")
        return any(marker in tail for marker in self.language.memory_error_markers)

    def _judged(self, index: int, case: Case, outcome: CaseOutcome, failed: tuple[str, str] | None) -> dict:
        actual = outcome.stdout.decode("utf-8", errors="replace")
        if failed is not None:
            verdict, message = failed
            stderr = outcome.stderr.decode("utf-8", errors="replace").strip()
            if stderr and verdict == verdicts.RUNTIME_ERROR:
                message = f"{message}:\n{stderr[-STDERR_SHOWN_CHARS:]}"
            return self._test(index, case, verdict, 0.0, message, outcome, actual, None)
        check = self._check(case, actual)
        return self._from_check(index, case, check, outcome, actual)

    def _check(self, case: Case, actual: str) -> Check:
        options = {key: value for key, value in self.suite.checker.items() if key != "type"}
        return checkers.BY_TYPE[self.checker_type](case.expected_output, actual, options)

    def _checked_by_program(self, index: int, case: Case, outcome: CaseOutcome) -> dict:
        actual = outcome.stdout.decode("utf-8", errors="replace")
        check = program_checker.check(
            self.sandbox, self.suite.checker, case.stdin, case.expected_output, actual, self.checker_limits, self.slot
        )
        if check is None:
            return self._skipped(index, case, "Not judged: the checker program failed", outcome)
        return self._from_check(index, case, check, outcome, actual)

    def _from_check(self, index: int, case: Case, check: Check, outcome: CaseOutcome, actual: str) -> dict:
        verdict = verdicts.PASSED if check.passed else verdicts.WRONG_ANSWER
        return self._test(index, case, verdict, check.score, check.message, outcome, actual, check.diff)

    def _test(
        self, index: int, case: Case, verdict: str, score: float, message: str, outcome: CaseOutcome | None,
        actual: str | None, diff: dict | None,
    ) -> dict:
        shown = None
        if actual is not None:
            encoded = actual.encode()
            shown = actual if len(encoded) <= self.shown_output_bytes else encoded[: self.shown_output_bytes].decode(
                "utf-8", errors="ignore"
            )
        return {
            "index": index,
            "name": case.name,
            "hidden": case.hidden,
            "verdict": verdict,
            "points": round(case.points * max(0.0, min(1.0, score)), 6),
            "max_points": case.points,
            "time_ms": outcome.wall_ms if outcome else None,
            "memory_bytes": outcome.max_rss_bytes if outcome else None,
            "message": message,
            "stdin": case.stdin,
            "expected_output": case.expected_output,
            "actual_output": shown,
            "diff": diff,
        }

    def _skipped(self, index: int, case: Case, message: str, outcome: CaseOutcome | None = None) -> dict:
        return self._test(index, case, verdicts.SKIPPED, 0.0, message, outcome, None, None)

    def _summary(self, tests: list[dict], complete: bool) -> Grade:
        return Grade(
            verdict=verdicts.worst([test["verdict"] for test in tests]),
            score=round(sum(test["points"] for test in tests), 6),
            max_score=round(sum(case.points for case in self.suite.cases), 6),
            passed=sum(test["verdict"] == verdicts.PASSED for test in tests),
            total=len(tests),
            complete=complete,
            tests=[public(test) for test in tests],
        )
