"""Extensions created unbound and bound in create_app(), and the SQLite settings every connection gets."""
from __future__ import annotations

import os

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event

db = SQLAlchemy()
# `flask --app wsgi db ...` (Flask-Migrate); the engine upgrades by itself at startup (app/storage/schema.py)
migrate = Migrate(directory=os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations"))


def database_options(app: Flask) -> dict[str, object]:
    """Engine options for the configured URL."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    options: dict[str, object] = {"pool_size": app.config["DATABASE_POOL_SIZE"], "max_overflow": -1}
    if url.startswith("sqlite"):
        options["connect_args"] = {
            "timeout": app.config["DATABASE_BUSY_TIMEOUT_SECONDS"],
            # connections move between request and worker threads through the pool
            "check_same_thread": False,
        }
    else:
        options["pool_pre_ping"] = True
    return options


def init_app(app: Flask) -> None:
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", database_options(app))
    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)


def _sqlite_pragmas(connection, record) -> None:  # noqa: ANN001 (DB-API objects)
    cursor = connection.cursor()
    # WAL: readers never block the writer, so long-polls and autosaves do not queue on each other
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode loses nothing when the process is killed; only a power cut can
    # take the last commits, and every commit is still atomic
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
