"""CodeSession, CodeRevision and Execution, and the one place an execution's status may change.

A change to these tables needs a migration in app/storage/migrations/versions/ (docs/scaling.md).
"""
from __future__ import annotations

import functools
import uuid
from datetime import datetime, timezone

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, Update, bindparam, false, func, select, text, update
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .retry import retrying
from .database import db

QUEUED, RUNNING, COMPLETED, FAILED, TIMEOUT = "QUEUED", "RUNNING", "COMPLETED", "FAILED", "TIMEOUT"
# what an execution is: one run, or a graded run over a test suite's cases
RUN, GRADE = "run", "grade"
TERMINAL = frozenset({COMPLETED, FAILED, TIMEOUT})
# status only moves forward; FAILED straight from QUEUED covers runs that can never start
ALLOWED_MOVES: dict[str, frozenset[str]] = {
    QUEUED: frozenset({RUNNING, FAILED}),
    RUNNING: frozenset({COMPLETED, FAILED, TIMEOUT}),
}


def utcnow() -> datetime:
    """Naive UTC, as stored: SQLite keeps no time zones."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_id() -> str:
    return str(uuid.uuid4())


class CodeSession(db.Model):
    __tablename__ = "code_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    language: Mapped[str] = mapped_column(String(32))
    source_code: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # the user (a JWT's sub) it belongs to when access control is on (app/auth.py); else null
    owner_user_id: Mapped[str | None] = mapped_column(String(255))
    # the program's other files beside source_code, as JSON {"name": "content"}; null: none
    files: Mapped[str | None] = mapped_column(Text)

    executions: Mapped[list[Execution]] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True
    )
    revisions: Mapped[list[CodeRevision]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


# what made a revision (app/services/revisions.py): only the live "typing" one follows the session
CREATE, TYPING, PASTE, RUN, RESTORE = "create", "typing", "paste", "run", "restore"
REVISION_REASONS = (CREATE, TYPING, PASTE, RUN, RESTORE)


class CodeRevision(db.Model):
    """One recoverable state of a session's code, written in the transaction of the save that made it."""

    __tablename__ = "code_revisions"
    __table_args__ = (
        # the history newest first, the head revision an autosave extends, and the per-session cap
        UniqueConstraint("session_id", "revision", name="uq_code_revisions_session_revision"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("code_sessions.id", ondelete="CASCADE"))
    # 1, 2, 3... within the session; never reused, so an execution's revision stays unambiguous
    revision: Mapped[int]
    # the session's version, code, files (JSON text, when the session has files) and size this
    # revision holds; all null for the live revision, whose are the session's current ones
    version: Mapped[int | None]
    source_code: Mapped[str | None] = mapped_column(Text)
    files: Mapped[str | None] = mapped_column(Text)
    size_bytes: Mapped[int | None]
    reason: Mapped[str] = mapped_column(String(16))
    # when its burst of typing began (the age limit counts from here)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the last save it holds: for the live revision, when it was started
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Execution(db.Model):
    __tablename__ = "executions"
    __table_args__ = (
        # the session's history, newest first
        Index("ix_executions_session_queued", "session_id", "queued_at"),
        # the dispatcher's "oldest queued" and the reaper's "running" scans
        Index("ix_executions_status_queued", "status", "queued_at"),
        # per-client rate limits and the dispatcher's fairness (who has how many running)
        Index("ix_executions_owner_queued", "owner", "queued_at"),
        # per-user rate limits when access control is on
        Index("ix_executions_user_queued", "owner_user_id", "queued_at"),
        UniqueConstraint("session_id", "idempotency_key", name="uq_executions_idempotency"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("code_sessions.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(32))
    source_code: Mapped[str] = mapped_column(Text)
    stdin: Mapped[str] = mapped_column(Text, default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    stdout: Mapped[str] = mapped_column(Text, default="")
    stderr: Mapped[str] = mapped_column(Text, default="")
    exit_code: Mapped[int | None]
    execution_time_ms: Mapped[int | None]
    compile_time_ms: Mapped[int | None]
    stdout_truncated: Mapped[bool] = mapped_column(default=False)
    stderr_truncated: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(String(64))
    # limits the run was given, as JSON text, so a result can say what it was held to
    limits: Mapped[str | None] = mapped_column(Text)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # which engine process runs it, and until when that claim is good (see runner.reap_abandoned)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    # whom the run is charged to: the session id, or "ip:<address>" for a one-shot run
    owner: Mapped[str | None] = mapped_column(String(80))
    # how many times an engine claimed it: 1 for every run that started (exactly-once is checkable)
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # the user who queued it when access control is on (app/auth.py); else null
    owner_user_id: Mapped[str | None] = mapped_column(String(255))
    # the other files it ran with (JSON {"name": "content"}) and its command-line arguments
    # (JSON list); null: none
    files: Mapped[str | None] = mapped_column(Text)
    args: Mapped[str | None] = mapped_column(Text)

    # "run" (one run with one stdin) or "grade" (checked against a test suite's cases)
    kind: Mapped[str] = mapped_column(String(8), default=RUN, server_default=RUN)
    # the suite a graded run is checked against; its result, as JSON text, once graded
    test_suite_id: Mapped[str | None] = mapped_column(String(36))
    grade: Mapped[str | None] = mapped_column(Text)
    # stdin stays open while it runs: POST /executions/{id}/stdin feeds it (app/services/interactive.py)
    interactive: Mapped[bool] = mapped_column(default=False, server_default=false())
    # a stop was asked (POST /executions/{id}/cancel): the engine process running it stops it (app/controls.py)
    cancel_requested_at: Mapped[datetime | None]
    # an interactive run's interleaved stdin, stdout and stderr: JSON [{"stream", "text"}], bounded
    transcript: Mapped[str | None] = mapped_column(Text)
    # the session's revision (CodeRevision.revision) this run ran; null for one-shot runs
    revision: Mapped[int | None]

    session: Mapped[CodeSession | None] = relationship(back_populates="executions")

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


class TestSuite(db.Model):
    """Test cases a program is graded against, with the checker that compares outputs and the limits."""

    __tablename__ = "test_suites"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # {"type": "tokens" | ..., options}, as JSON text
    checker: Mapped[str] = mapped_column(Text)
    time_limit_ms: Mapped[int]
    # null: the language's own memory limit
    memory_limit_bytes: Mapped[int | None] = mapped_column(BigInteger)
    total_time_limit_ms: Mapped[int]
    # [{"name", "stdin", "expected_output", "hidden", "points", "group"}], as JSON text: a suite is
    # read and written whole, never one case at a time
    cases: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the operator (a JWT's sub) who made it when access control is on; else null
    owner_user_id: Mapped[str | None] = mapped_column(String(255))


class ExecutionStdin(db.Model):
    """One chunk of stdin sent to an interactive run, numbered from 1: the engine running it takes them in order."""

    __tablename__ = "execution_stdin"

    execution_id: Mapped[str] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[str] = mapped_column(Text)
    # data's length in UTF-8: the run's stdin limit counts bytes
    size: Mapped[int] = mapped_column(default=0)
    # the end of input: nothing may follow it
    eof: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def move(
    execution_id: str, to: str, retry_seconds: float | None = None, only_from: str | None = None, **fields: object
) -> bool:
    """Move an execution to status `to` if its current status allows it; True if this call moved it.

    A conditional UPDATE, so two engine processes racing for the same row cannot both win; a
    locked database is retried (app/storage/retry.py) for up to retry_seconds. only_from narrows the
    statuses it may leave (a cancel ends a QUEUED run here; a RUNNING one ends where it runs).
    """
    statement = _move_statement(to, frozenset(fields), only_from, db.engine.dialect.name == "postgresql")
    params = {"execution_id": execution_id, **fields}

    def work() -> bool:
        moved = db.session.connection().execute(statement, params)
        db.session.commit()
        return moved.rowcount == 1

    return retrying(work, retry_seconds)


@functools.cache
def _move_statement(to: str, names: frozenset[str], only_from: str | None = None, skip_locked: bool = False) -> Update:
    """The conditional UPDATE of move(), built once per target status and set of fields.

    On the table with bound parameters: every run moves twice, and the ORM's bulk-update path
    and building the statement cost more than running it (profiled: 290 -> 110 us a move).
    skip_locked (PostgreSQL): a claim (the move to RUNNING) finds its row through FOR UPDATE SKIP
    LOCKED, so while another instance's claim holds the row, this one updates nothing at once
    instead of waiting on the lock to learn it lost.
    """
    allowed_from = [status for status, moves in ALLOWED_MOVES.items() if to in moves and only_from in (None, status)]
    if not allowed_from:
        raise ValueError(f"no status may move to {to}")
    table = Execution.__table__
    values: dict[str, object] = {name: bindparam(name) for name in names}
    row = table.c.id == bindparam("execution_id")
    if to == RUNNING:
        values["attempts"] = table.c.attempts + 1
        if skip_locked:
            row = table.c.id == select(table.c.id).where(row).with_for_update(skip_locked=True).scalar_subquery()
    return update(table).where(row, table.c.status.in_(allowed_from)).values(status=to, **values)


def active_counts() -> dict[str, int]:
    """How many executions are QUEUED and RUNNING right now, across every engine on the database."""
    rows = db.session.execute(
        select(Execution.status, func.count()).where(Execution.status.in_([QUEUED, RUNNING])).group_by(Execution.status)
    ).all()
    counts = {QUEUED: 0, RUNNING: 0}
    counts.update(dict(rows))
    return counts
