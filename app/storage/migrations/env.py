"""Alembic's environment: the engine's tables, over the connection app/storage/schema.py hands over, or the app's own (flask db ...)."""
from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from app.storage import models  # noqa: F401 (puts the tables on db.metadata)
from app.storage.database import db

config = context.config


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=db.metadata,
        compare_type=True,
        # SQLite changes a column by copying the table: migrations written for it need batch mode
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    from flask import current_app

    url = current_app.extensions["migrate"].db.engine.url.render_as_string(hide_password=False)
    context.configure(url=url, target_metadata=db.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (given := config.attributes.get("connection")) is not None:
    # app/storage/schema.py: its caller already holds the migration lock on this connection
    run(given)
else:
    from flask import current_app

    from app.storage.schema import migration_lock

    # `flask db upgrade` and the like: take the same lock an engine starting up takes
    with current_app.extensions["migrate"].db.engine.connect() as connection, migration_lock(connection):
        run(connection)
        connection.commit()
