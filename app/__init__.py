"""create_app(): configuration, database, API, error handlers, sandbox and run pool."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from flask import Flask
from sqlalchemy.exc import OperationalError

from . import api, errors, extensions
from .config import Config
from .events import Hub
from .extensions import db
from .runner import Runner
from .sandbox import Sandbox, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Engine:
    """The long-lived parts of one engine process, at app.extensions["engine"]."""

    sandbox: Sandbox
    hub: Hub
    runner: Runner


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(Config)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("ENGINE")
    if test_config:
        app.config.update(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        app.config["SQLALCHEMY_DATABASE_URI"] = app.config.get("DATABASE_URL") or (
            "sqlite:///" + os.path.join(app.instance_path, "engine.db")
        )
    logging.basicConfig(level=app.config.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    extensions.init_app(app)
    errors.init_app(app)
    api.init_app(app)
    _create_tables(app)

    sandbox = Sandbox(
        Settings(
            isolation=app.config["ISOLATION"],
            uid_base=int(app.config["SANDBOX_UID_BASE"]),
            cgroup_name=app.config["SANDBOX_CGROUP_NAME"],
            scratch_dir=app.config.get("SCRATCH_DIR"),
        )
    )
    hub = Hub()
    runner = Runner(app, sandbox, hub)
    app.extensions["engine"] = Engine(sandbox, hub, runner)
    if app.config["RUNNER_ENABLED"]:
        runner.start()
    return app


def _create_tables(app: Flask) -> None:
    with app.app_context():
        try:
            db.create_all()
        except OperationalError as error:
            # several workers starting at once: another one created them first
            if "already exists" not in str(error):
                raise
