"""The one place transient database errors ("database is locked") are retried, with exponential backoff and jitter.

Services and the runner wrap each unit of work (the statements up to and including its commit) in
`retrying(...)`. When the budget runs out the caller gets `DatabaseBusy`, a plain exception that
app/errors.py renders as 503 with Retry-After: never a 500.
"""
from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from .extensions import db

log = logging.getLogger(__name__)

T = TypeVar("T")

# sqlite3 says these when another connection holds the lock past the busy timeout, or when a
# deferred transaction's snapshot went stale before it could write (SQLITE_BUSY_SNAPSHOT)
SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database is busy", "database schema is locked")
# PostgreSQL: serialization failure, deadlock, lock not available
POSTGRES_TRANSIENT = frozenset({"40001", "40P01", "55P03"})
# an arbitrary constant: the PostgreSQL advisory lock that serializes run admissions (begin_immediate)
ADMISSION_LOCK_KEY = 7_316_501_002


class DatabaseBusy(RuntimeError):
    """The database stayed locked past the retry budget; the work may be tried again shortly."""


def is_transient(error: BaseException) -> bool:
    """True for database errors that go away by themselves: locks, busy, serialization conflicts."""
    if not isinstance(error, (OperationalError, DBAPIError)):
        return False
    if getattr(error, "connection_invalidated", False):
        return True
    original = getattr(error, "orig", None)
    # psycopg (3) names the SQLSTATE `sqlstate`; psycopg2 named it `pgcode`
    if (getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)) in POSTGRES_TRANSIENT:
        return True
    message = str(original if original is not None else error).lower()
    return any(marker in message for marker in SQLITE_TRANSIENT)


def backoff(attempt: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * (2**attempt)))


def retrying(work: Callable[[], T], seconds: float | None = None, immediate: bool = False, writes: bool = True) -> T:
    """Run work() (which commits) until it succeeds, retrying transient errors within `seconds`.

    immediate=True makes the transaction exclusive among those that ask for it (begin_immediate),
    so the reads that decide a write (queue depth, rate limits) see the latest data and no other
    admission can slip in between. writes=False is for work that only reads: it does not queue
    behind this process's SQLite writers.
    """
    config = current_app.config
    budget = float(config["DATABASE_RETRY_SECONDS"] if seconds is None else seconds)
    base = float(config["DATABASE_RETRY_BASE_SECONDS"])
    cap = float(config["DATABASE_RETRY_MAX_BACKOFF_SECONDS"])
    deadline = time.monotonic() + budget
    attempt = 0
    while True:
        try:
            with _one_writer_at_a_time() if writes else contextlib.nullcontext():
                if immediate:
                    begin_immediate()
                return work()
        except Exception as error:
            db.session.rollback()
            if not is_transient(error):
                raise
            pause = backoff(attempt, base, cap)
            if time.monotonic() + pause >= deadline:
                log.warning("database still busy after %d attempts: %s", attempt + 1, error)
                raise DatabaseBusy() from error
            attempt += 1
            time.sleep(pause)


# SQLite lets one connection write at a time, and a connection that finds the lock taken sleeps in
# its busy handler for 1 ms, then 2, 5, 10 … up to 100 ms between tries: under 50 concurrent
# autosaves that alone made p99 over a second. This process's writers queue here instead, and are
# woken the moment the previous one commits; other processes still meet the busy handler.
_sqlite_writer = threading.RLock()


def _one_writer_at_a_time() -> contextlib.AbstractContextManager[object]:
    return _sqlite_writer if db.engine.dialect.name == "sqlite" else contextlib.nullcontext()


def begin_immediate() -> None:
    """Start the session's transaction holding the admission lock: SQLite's write lock, or on
    PostgreSQL a transaction-level advisory lock every admission takes (released by its commit)."""
    dialect = db.engine.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return
    # a read earlier in this request may have left the session's transaction open: end it first,
    # so the lock and a fresh snapshot are taken together
    db.session.rollback()
    if dialect == "sqlite":
        db.session.execute(text("BEGIN IMMEDIATE"))
    else:
        # READ COMMITTED: every statement after the lock sees what the previous holder committed
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADMISSION_LOCK_KEY})
