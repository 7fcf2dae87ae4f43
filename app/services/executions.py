"""Queueing runs, reading results, and long-polling for them."""
from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import replace
from datetime import datetime, timedelta

from flask import current_app, request
from sqlalchemy import Select, bindparam, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from .. import auth, catalog
from ..errors import APIError
from ..sandbox import Limits
from ..storage import models
from ..storage.database import db
from ..storage.models import Execution, TestSuite
from ..runner.job import Job
from ..storage.retry import retrying
from . import programs, test_suites

# the window of the per-minute rate limits
RATE_WINDOW_SECONDS = 60
# a waiter re-reads its execution at least this often even if no event came (a stalled watcher)
WAIT_FALLBACK_RECHECK_SECONDS = 2.0


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
    files: dict[str, str] | None = None,
    limits: dict[str, float | int] | None = None,
    args: list[str] | None = None,
    test_suite_id: str | None = None,
    interactive: bool = False,
    revision: int | None = None,
) -> Execution:
    """Store a QUEUED execution of source_code (with its other files, arguments and own limits)
    and wake the runner; returns at once.

    With test_suite_id it is a graded run (kind "grade"): checked against that suite's cases.

    Admission (queue bound, per-session and per-IP limits, the session's history cap) and the
    insert happen in one write transaction, so concurrent requests cannot overshoot a limit.
    """
    language = catalog.language_named(language_name)
    if test_suite_id is not None and stdin:
        raise APIError("validation_error", "stdin cannot go with test_suite_id: each test case has its own.", 422)
    if test_suite_id is not None and interactive:
        raise APIError("validation_error", "interactive cannot go with test_suite_id: a graded run feeds each case its own input.", 422)
    if test_suite_id is not None and (files or args):
        # the test supervisor runs the entry file alone (app/sandbox/grading.py)
        raise APIError("validation_error", "A graded run takes one file and no arguments: files and args cannot go with test_suite_id.", 422)
    check_size("source_code", source_code, "SOURCE_MAX_BYTES")
    check_size("stdin", stdin, "STDIN_MAX_BYTES")
    files_json = programs.as_json(programs.check_files(files, language))
    args_json = programs.as_json(programs.check_args(args, language))
    run_limits = catalog.requested_limits(language, limits)
    parts = engine()
    if not parts.runner.accepting:
        raise APIError("shutting_down", "The engine is shutting down; try again shortly.", 503, {"Retry-After": "5"})
    if not parts.sandbox.available:
        raise APIError("sandbox_unavailable", f"Code cannot run here: {parts.sandbox.unavailable_reason}", 503, {"Retry-After": "60"})
    owner = session_id if session_id is not None else f"ip:{request.remote_addr or 'unknown'}"
    user_id = auth.current_user_id()
    kind = models.RUN
    if test_suite_id is not None:
        kind = models.GRADE
        run_limits = grade_limits(run_limits, test_suites.get(test_suite_id))
    limits_json = json.dumps(run_limits.as_dict())

    waiting_before = False
    # a worker and a slot held across the insert: when nothing else waits, the run is inserted
    # RUNNING under this process's claim (one transaction fewer, and no hand-over to the claim)
    reservation = parts.runner.reserve(interactive, owner)
    claimed: Job | None = None

    def admit_and_insert() -> Execution:
        nonlocal waiting_before, claimed
        claimed = None
        waiting_before = admit(owner, session_id, user_id) > 0
        now = models.utcnow()
        values: dict[str, object] = {
            "id": reservation.execution_id if reservation is not None else models.new_id(),
            "session_id": session_id, "owner": owner, "owner_user_id": user_id, "language": language.name,
            "source_code": source_code, "stdin": stdin, "idempotency_key": idempotency_key, "limits": limits_json,
            "files": files_json, "args": args_json, "kind": kind, "test_suite_id": test_suite_id,
            "interactive": interactive, "revision": revision, "queued_at": now, "status": models.QUEUED,
            "stdout": "", "stderr": "", "stdout_truncated": False, "stderr_truncated": False, "attempts": 0,
        }
        # the answer: the run as queued (never in the session), even when it is inserted RUNNING below,
        # as it would be if a worker had claimed it a moment later
        execution = Execution(**values)
        if reservation is not None and not waiting_before:
            claimed = replace(Job.of(execution), started_at=now)
            values.update(parts.runner.claim_fields(claimed, now))
        # on the table: the ORM's unit of work cost more than the insert itself (profiled)
        db.session.connection().execute(_INSERT, values)
        db.session.commit()
        return execution

    # refusals are decided on a plain read first, so an overloaded engine answers 429/503 without
    # queueing for the write lock; an admission is confirmed inside the write transaction. With a
    # worker and slot reserved the engine is not overloaded: the write transaction decides alone
    try:
        if reservation is None:
            retrying(lambda: admit(owner, session_id, user_id, trim=False), writes=False)
        try:
            execution = retrying(admit_and_insert, immediate=True)
        except IntegrityError:
            # the same Idempotency-Key won a race with this request: answer with its execution
            db.session.rollback()
            existing = find_by_idempotency_key(session_id, idempotency_key)
            if existing is None:
                raise
            return existing
        if claimed is not None and reservation is not None:
            reserved, reservation = reservation, None
            parts.runner.start_reserved(reserved, claimed)
            return execution
    finally:
        if reservation is not None:
            # not inserted RUNNING (others wait, a refusal, a failure): the worker and slot go back
            parts.runner.unreserve(reservation)
    parts.runner.offer(execution, others_waiting=waiting_before)
    return execution


def grade_limits(limits: Limits, suite: TestSuite) -> Limits:
    """What each case of a graded run is held to: the language's limits with the suite's time and memory."""
    seconds = suite.time_limit_ms / 1000
    return limits.with_overrides(
        timeout_seconds=seconds, cpu_seconds=math.ceil(seconds), memory_bytes=suite.memory_limit_bytes
    )


def admit(owner: str, session_id: str | None, user_id: str | None = None, trim: bool = True) -> int:
    """Raise the 429 or 503 a new run of `owner` (and of user_id, with access control on) gets now;
    make room in the session's history. Returns how many runs are QUEUED."""
    config = current_app.config
    now = models.utcnow()
    if session_id is not None:
        check_active("owner", owner, int(config["ACTIVE_RUNS_PER_SESSION"]), "This session")
        check_rate("owner", owner, int(config["RUNS_PER_MINUTE_PER_SESSION"]), now, "this session")
    else:
        check_rate("owner", owner, int(config["ONE_SHOT_RUNS_PER_MINUTE_PER_IP"]), now, "your address")
    if user_id is not None:
        # the user's runs across all their sessions and one-shots
        check_active("owner_user_id", user_id, int(config["ACTIVE_RUNS_PER_USER"]), "You")
        check_rate("owner_user_id", user_id, int(config["RUNS_PER_MINUTE_PER_USER"]), now, "you")
    queued = _count(_QUEUED_COUNT)
    if queued >= config["QUEUE_MAX"]:
        raise APIError("queue_full", "Too many runs are waiting; try again shortly.", 503, {"Retry-After": "2"})
    if trim and session_id is not None:
        trim_history(session_id, int(config["EXECUTIONS_KEPT_PER_SESSION"]))
    return queued


def check_active(column: str, who: str, active_max: int, label: str) -> None:
    """429 with Retry-After when the runs whose `column` is `who` already have active_max QUEUED or RUNNING."""
    if not active_max:
        return
    active = _count(_active_count(column), who=who)
    if active >= active_max:
        verb = "have" if label == "You" else "has"
        raise APIError(
            "too_many_active_runs",
            f"{label} already {verb} {active} runs queued or running (the limit is {active_max}); "
            "wait for one to finish.",
            429,
            {"Retry-After": str(max(1, math.ceil(float(current_app.config["RUN_TIMEOUT_SECONDS"]))))},
            limit=active_max,
        )


def check_rate(column: str, who: str, per_minute: int, now: datetime, whose: str) -> None:
    """429 with Retry-After when the runs whose `column` is `who` started per_minute in the last 60 s."""
    if not per_minute:
        return
    since = now - timedelta(seconds=RATE_WINDOW_SECONDS)
    if _count(_recent_count(column), who=who, since=since) < per_minute:
        return
    # the run that has to age out of the window before one more fits
    of_whom = getattr(Execution, column) == who
    frees_one = db.session.scalar(
        select(Execution.queued_at)
        .where(of_whom, Execution.queued_at > since)
        .order_by(Execution.queued_at.desc())
        .offset(per_minute - 1)
        .limit(1)
    )
    wait_seconds = RATE_WINDOW_SECONDS - (now - frees_one).total_seconds() if frees_one else RATE_WINDOW_SECONDS
    raise APIError(
        "rate_limited",
        f"Too many runs from {whose}: the limit is {per_minute} a minute.",
        429,
        {"Retry-After": str(max(1, math.ceil(wait_seconds)))},
        limit=per_minute,
    )


# Admission runs its counts twice for every run queued (a plain read, then in the write
# transaction): the statements are built once, with bound parameters, and run on the session's
# connection, which costs a third of the ORM's path for the same query (profiled).
_EXECUTIONS = Execution.__table__
_INSERT = insert(_EXECUTIONS)
_QUEUED_COUNT = select(func.count()).where(_EXECUTIONS.c.status == models.QUEUED)


@functools.cache
def _active_count(column: str) -> Select:
    return select(func.count()).where(
        _EXECUTIONS.c[column] == bindparam("who"), _EXECUTIONS.c.status.in_([models.QUEUED, models.RUNNING])
    )


@functools.cache
def _recent_count(column: str) -> Select:
    return select(func.count()).where(
        _EXECUTIONS.c[column] == bindparam("who"), _EXECUTIONS.c.queued_at > bindparam("since")
    )


_HISTORY_COUNT = select(func.count()).where(_EXECUTIONS.c.session_id == bindparam("who"))


def _count(statement: Select, **params: object) -> int:
    return int(db.session.connection().execute(statement, params).scalar_one())


def trim_history(session_id: str, keep: int) -> None:
    """Delete the session's oldest finished executions so that one more still fits under `keep`."""
    if not keep:
        return
    kept = _count(_HISTORY_COUNT, who=session_id)
    excess = kept - keep + 1
    if excess <= 0:
        return
    oldest = (
        select(Execution.id)
        .where(Execution.session_id == session_id, Execution.status.in_(models.TERMINAL))
        .order_by(Execution.queued_at)
        .limit(excess)
    )
    db.session.execute(delete(Execution).where(Execution.id.in_(oldest)).execution_options(synchronize_session=False))


def find_by_idempotency_key(session_id: str | None, key: str | None) -> Execution | None:
    if key is None:
        return None
    return db.session.scalar(
        select(Execution).where(Execution.session_id == session_id, Execution.idempotency_key == key)
    )


def get(execution_id: str) -> Execution:
    execution = db.session.get(Execution, execution_id)
    # another user's execution answers exactly as an unknown id: its existence is not disclosed
    if execution is None or not auth.visible_to_caller(execution.owner_user_id):
        raise APIError("not_found", f"No execution {execution_id}.", 404)
    return execution


# the long-poll's look while it waits: is the run over yet (and may the caller see it)? Two columns,
# not the ORM's whole row (source, output): the row is read once, when the wait ends (profiled: the
# whole-row reads were most of a long-poll's CPU)
_STATUS_OF = select(Execution.__table__.c.status, Execution.__table__.c.owner_user_id).where(
    Execution.__table__.c.id == bindparam("id")
)


def _peek(execution_id: str) -> str:
    """The execution's status; 404 as get() for an unknown one, or another user's."""
    row = db.session.connection().execute(_STATUS_OF, {"id": execution_id}).first()
    if row is None or not auth.visible_to_caller(row.owner_user_id):
        raise APIError("not_found", f"No execution {execution_id}.", 404)
    return row.status


def wait(execution_id: str, seconds: float) -> Execution:
    """The execution once it is terminal, or as it is after `seconds`; holds no database connection while waiting.

    This process's runner wakes the waiter the moment it finishes a run; the process's watcher
    (app/live/watcher.py: one query per tick for all waiters) does the same for runs another
    engine process finished.
    """
    deadline = time.monotonic() + min(seconds, current_app.config["LONG_POLL_MAX_SECONDS"])
    parts = engine()
    runner = parts.runner
    with parts.hub.subscribe(execution_id) as subscription, parts.watcher.watch(execution_id):
        while True:
            status = _peek(execution_id)
            remaining = deadline - time.monotonic()
            if status in models.TERMINAL or remaining <= 0:
                return get(execution_id)
            if not runner.accepting and not runner.is_running(execution_id):
                # shutting down and not running it here: answer now instead of holding the worker
                return get(execution_id)
            # give the connection back: hundreds of waiters must not hold the pool
            db.session.rollback()
            db.session.close()
            wake_at = min(deadline, time.monotonic() + WAIT_FALLBACK_RECHECK_SECONDS)
            finished = False
            while not finished and (left := wake_at - time.monotonic()) > 0:
                finished = any(event.kind == "final" for event in subscription.take(left))
            if finished:
                # "final" is published once the end is committed: the row is terminal
                return get(execution_id)
