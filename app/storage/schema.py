"""The database schema: create_app() upgrades it to the newest migration (app/storage/migrations), one process at a time.

Every gunicorn worker runs create_app(), so several may start on one database at once. They take
turns: on PostgreSQL through an advisory lock (`pg_advisory_lock`), on SQLite through a flock()ed
file beside the database. The first one in migrates; the others find the database at head and go on.
"""
from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from .database import db

log = logging.getLogger(__name__)

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
# an arbitrary constant every engine uses for pg_advisory_lock while it migrates
MIGRATION_LOCK_KEY = 7_316_501_001


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """Alembic's configuration for app/storage/migrations; with a connection, migrations run on it."""
    config = AlembicConfig()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest migration's revision."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(connection: Connection) -> str | None:
    """The revision the database is at; None for an empty one, or one made before migrations."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    # read directly: alembic's MigrationContext would log two lines at every start of every worker
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Hold the database's migration lock for the block: one process migrates at a time."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # a session-level lock: it outlives the transactions of the migration; a process that dies
        # holding it loses its connection, and with it the lock
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
        return
    path = connection.engine.url.database if dialect == "sqlite" else None
    if not path or path == ":memory:":
        # an in-memory database lives in one process: nobody to take turns with
        yield
        return
    # SQLite's DDL is not transactional, so its own locks cannot make a migration atomic; a
    # flock()ed file beside the database can (released by the kernel if the holder dies)
    with open(f"{path}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the database to head under the migration lock; (revision before, revision after)."""
    newest = head()
    with engine.connect() as connection, migration_lock(connection):
        before = current(connection)
        legacy = before is None and inspect(connection).has_table("code_sessions")
        connection.rollback()
        if before == newest:
            return before, newest
        if legacy:
            log.warning("database made before migrations (no alembic_version): adopting it, rows kept")
        command.upgrade(alembic_config(connection), "head")
        connection.commit()
        log.info("database schema upgraded from %s to %s", before or "nothing", newest)
        return before, newest


def init_app(app: Flask) -> None:
    """Bring the configured database to the newest schema before anything uses it."""
    with app.app_context():
        upgrade(db.engine)
