"""create_app(): configuration, database, API, error handlers, sandbox and run pool."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from flask import Flask

from . import api, auth, catalog, cli, errors, logs, metrics, web
from .config import Config
from .live.backbone import Backbone, Handlers, LocalBackbone
from .live.hub import Hub
from .live.watcher import Watcher
from .runner import Runner
from .sandbox import Sandbox, Settings, installed
from .slots import WARM_SLOT_FIRST, SlotPool, check_ranges
from .storage import database, schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Engine:
    """The long-lived parts of one engine process, at app.extensions["engine"]."""

    sandbox: Sandbox
    hub: Hub
    runner: Runner
    # the one watcher of runs that end in another process (app/live/watcher.py); the runner starts and stops it
    watcher: Watcher
    # PostgreSQL's LISTEN/NOTIFY between engine processes, or None (SQLite, or turned off)
    backbone: Backbone | None = None


class EngineApp(Flask):
    """Flask, except that a refusal the engine chose is not logged as a failure."""

    def log_exception(self, exc_info) -> None:  # noqa: ANN001 (sys.exc_info() or None)
        # flask-restx logs every 5xx it renders as a failure, with a traceback; a 503 (queue_full,
        # shutting_down, database_busy) is an answer the engine chose, not a failure
        if exc_info and errors.expected(exc_info[1]) is not None:
            return
        super().log_exception(exc_info)


def create_app(test_config: dict | None = None) -> Flask:
    # ENGINE_INSTANCE_PATH: a second engine on the same machine gets its own instance folder
    instance_path = os.environ.get("ENGINE_INSTANCE_PATH")
    app = EngineApp(__name__, instance_relative_config=True, instance_path=os.path.abspath(instance_path) if instance_path else None)
    app.config.from_object(Config)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("ENGINE")
    if test_config:
        app.config.update(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    # the database lives here: no run's uid may read it, even from outside its sandbox
    os.chmod(app.instance_path, 0o700)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        app.config["SQLALCHEMY_DATABASE_URI"] = app.config.get("DATABASE_URL") or (
            "sqlite:///" + os.path.join(app.instance_path, "engine.db")
        )
    logs.init_app(app)
    config = app.config
    check_ranges(int(config["RUN_SLOTS"]), int(config["INTERACTIVE_RUN_SLOTS"]), int(config["WARM_SLOTS"]),
                 int(config["DIAGNOSTICS_SLOTS"]) + int(config["DIAGNOSTICS_WARM_SLOTS"]))

    database.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    web.init_app(app)
    api.init_app(app)
    metrics.init_app(app)
    cli.init_app(app)
    schema.init_app(app)

    with app.app_context():
        compile_limits = catalog.compile_limits()
    sandbox = Sandbox(
        Settings(
            isolation=app.config["ISOLATION"],
            uid_base=int(app.config["SANDBOX_UID_BASE"]),
            cgroup_name=app.config["SANDBOX_CGROUP_NAME"],
            syscall_filter=bool(app.config["SANDBOX_SYSCALL_FILTER"]),
            fork_server=bool(app.config["FORK_SERVER"]),
            fork_server_runs=int(app.config["FORK_SERVER_RUNS"]),
            cpu_cores=float(app.config["RUN_CPU_CORES"]),
            scratch_dir=app.config.get("SCRATCH_DIR"),
            compile_cache_dir=app.config["COMPILE_CACHE_DIR"],
            compile_cache_bytes=int(app.config["COMPILE_CACHE_BYTES"]),
            compile_limits=compile_limits,
        )
    )
    hub = Hub()
    runner = Runner(app, sandbox, hub)
    app.extensions["engine"] = Engine(sandbox, hub, runner, runner.watcher)
    # `flask --app wsgi prune` and the like load the app too, but must not claim runs
    if cli.is_maintenance_command():
        return app
    # an engine that runs nothing (RUNNER_ENABLED false: an API-only instance) still joins the
    # backbone: the stops and stdin it is sent go out on it, the events its streams show come in
    backbone = _start_backbone(app, hub, runner)
    app.extensions["engine"] = Engine(sandbox, hub, runner, runner.watcher, backbone)
    if app.config["RUNNER_ENABLED"]:
        runner.start()
        _start_warm_pool(app, sandbox)
    return app


def _start_backbone(app: Flask, hub: Hub, runner: Runner) -> Backbone | None:
    """Join the other engine processes' backbone (app/live/backbone.py): LISTEN/NOTIFY on PostgreSQL, sockets on SQLite."""
    with app.app_context():
        url = database.db.engine.url
    if not app.config["BACKBONE_ENABLED"]:
        return None
    controls = runner.controls
    handlers = Handlers(event=hub.mirror, cancel=controls.deliver_cancel, stdin=controls.deliver_stdin, queued=runner.wake)
    backend = url.get_backend_name()
    if backend == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        backbone: Backbone = Backbone(conninfo, runner.instance_id, handlers)
    elif backend == "sqlite" and app.config["BACKBONE_LOCAL"] and url.database and url.database != ":memory:":
        # the processes of one box over one SQLite file (gunicorn's workers): sockets beside the file
        backbone = LocalBackbone(url.database + "-live", runner.instance_id, handlers)
    else:
        return None
    backbone.start()
    # a run's first events must not go unheard: wait (briefly) for the listening connection
    if not backbone.wait_connected(5.0):
        log.warning("backbone: not listening yet; the watcher reads the database until it is")
    hub.forward = backbone.event
    runner.backbone = backbone
    return backbone


def _start_warm_pool(app: Flask, sandbox: Sandbox) -> None:
    sizes = {name: int(size) for name, size in app.config["WARM_POOL"].items()}
    with app.app_context():
        # a warm sandbox serves a run only if it was started with that run's limits
        limits = {language.name: catalog.limits_for(language) for language in installed()}
    slots = SlotPool(app.config["SLOT_LOCK_DIR"], int(app.config["WARM_SLOTS"]), first=WARM_SLOT_FIRST)
    sandbox.start_warm_pool(slots, sizes, lambda language: limits[language.name])
