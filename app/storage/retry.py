"""The one place transient database errors ("database is locked") are retried, with exponential backoff and jitter.

Services and the runner wrap each unit of work (the statements up to and including its commit) in
`retrying(...)`. When the budget runs out the caller gets `DatabaseBusy`, a plain exception that
app/errors.py renders as 503 with Retry-After: never a 500.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from .database import db

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


class WriterQueue:
    """SQLite's writers, one at a time across every process on the database file, woken in turn.

    SQLite lets one connection write at a time, and a connection that finds the lock taken sleeps
    in its busy handler for 1 ms, then 2, 5, 10 … up to 100 ms between tries: under 50 concurrent
    autosaves that alone made p99 over a second, and two gunicorn workers met there all the time.
    Writers queue here instead: the threads of this process on a lock, then one thread per process
    on an flock() of a file beside the database, which the kernel hands to the next waiter the
    moment the holder commits. Re-entrant (a write may nest inside another of the same thread).
    """

    def __init__(self) -> None:
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._fd_pid = 0
        self._fd_path = ""

    def hold(self, database_path: str | None) -> contextlib.AbstractContextManager[None]:
        return self._held(database_path)

    @contextlib.contextmanager
    def _held(self, database_path: str | None) -> Iterator[None]:
        with self._threads:
            fd = self._file(database_path) if self._depth == 0 else None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def _file(self, database_path: str | None) -> int | None:
        # an in-memory database has no file (and no other process): the thread lock is enough
        if not database_path or database_path == ":memory:":
            return None
        path = database_path + "-writer.lock"
        # an flock belongs to the open file: a descriptor inherited across fork() would be shared
        # with the parent, so each process opens its own
        if self._fd is None or self._fd_pid != os.getpid() or self._fd_path != path:
            if self._fd is not None:
                # another database (test apps) or an inherited copy: one descriptor at a time, never a leak
                os.close(self._fd)
                self._fd = None
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid, self._fd_path = os.getpid(), path
        return self._fd


_sqlite_writers = WriterQueue()


def _one_writer_at_a_time() -> contextlib.AbstractContextManager[object]:
    engine = db.engine
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    return _sqlite_writers.hold(engine.url.database)


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
