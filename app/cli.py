"""flask commands: `flask --app wsgi prune` applies the retention policy once."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from .storage import retention


@click.command("prune")
@click.option("--execution-age", type=float, default=None, help="seconds; default EXECUTION_RETENTION_SECONDS")
@click.option("--session-idle", type=float, default=None, help="seconds; default SESSION_IDLE_RETENTION_SECONDS")
@with_appcontext
def prune_command(execution_age: float | None, session_idle: float | None) -> None:
    """Delete finished executions and idle sessions older than the retention settings."""
    pruned = retention.prune(execution_age, session_idle)
    click.echo(f"deleted {pruned.executions} executions and {pruned.sessions} idle sessions")


def is_maintenance_command() -> bool:
    """True when a flask command other than `flask run` loaded the app: it must not claim runs."""
    context = click.get_current_context(silent=True)
    return context is not None and context.info_name != "run"


def init_app(app: Flask) -> None:
    app.cli.add_command(prune_command)
