"""What /health reports: database, run pool, the isolation in force, and the compile cache."""
from __future__ import annotations

import time

from flask import current_app
from sqlalchemy import text

from ..storage import models
from ..catalog import default_limits
from ..storage.database import db
from . import diagnostics
from .executions import engine


def database() -> tuple[dict[str, object], int]:
    started = time.perf_counter()
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 (any database failure is the answer here)
        db.session.rollback()
        return {"status": "error", "error": type(error).__name__}, 503
    return {
        "status": "ok",
        "dialect": db.engine.dialect.name,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }, 200


def workers() -> dict[str, object]:
    runner = engine().runner
    counts = models.active_counts()
    return {
        "pool_size": runner.workers,
        "busy": runner.busy,
        "idle": runner.workers - runner.busy,
        "slots_machine_wide": runner.slots.count,
        "queue_depth": counts.get(models.QUEUED, 0),
        "running": counts.get(models.RUNNING, 0),
        "queue_max": current_app.config["QUEUE_MAX"],
        "accepting": runner.accepting,
        "listeners": engine().hub.subscriber_count,
        "warm_pool": warm.describe() if (warm := engine().sandbox.warm_pool) else None,
        # interactive runs have workers and slots of their own (they wait on learners)
        "interactive": runner.describe_interactive(),
    }


def overall() -> tuple[dict[str, object], int]:
    parts = engine()
    sandbox = parts.sandbox.describe()
    serving = parts.sandbox.available and parts.runner.accepting
    status = "ok" if serving else ("shutting_down" if not parts.runner.accepting else "unavailable")
    if serving and sandbox["warning"]:
        status = "degraded"
    return {
        "status": status,
        "isolation": sandbox,
        "limits": default_limits().as_dict(),
        # compiled artifacts shared by the host's engines: bytes now (those in use may exceed the limit)
        "compile_cache": parts.sandbox.compile_cache.describe(),
        "live_backbone": live_backbone(parts.backbone),
        # POST /diagnostics: this process's pre-started linter sandboxes (app/sandbox/lint_pool.py)
        "diagnostics": diagnostics.describe(),
    }, 200 if serving else 503


def live_backbone(backbone: object | None) -> dict[str, object]:
    """How this process hears other engine processes' run events, ends, stops and stdin (app/live/backbone.py).

    transport: postgresql_listen_notify (instances over one PostgreSQL), unix_datagram_sockets (the
    workers of one box over one SQLite file), or null: none, and then the database is read every
    fallback_read_seconds instead (the only way when the backbone is off or not listening)."""
    config = current_app.config
    if backbone is not None:
        state = backbone.describe()  # type: ignore[attr-defined]
        # listening, the database is only the slow fallback for a lost notification
        key = "BACKBONE_FALLBACK_SECONDS" if state["connected"] else "LONG_POLL_RECHECK_SECONDS"
        return {**state, "fallback_read_seconds": float(config[key])}
    if not config["BACKBONE_ENABLED"]:
        why = "off (BACKBONE_ENABLED=false)"
    elif db.engine.dialect.name == "sqlite":
        why = "one process over SQLite: no other process to hear (gunicorn turns it on with more than one worker)"
    else:
        why = f"not available on {db.engine.dialect.name}"
    return {
        "transport": None, "state": "off", "connected": False, "why": why,
        "fallback_read_seconds": float(config["LONG_POLL_RECHECK_SECONDS"]),
    }
