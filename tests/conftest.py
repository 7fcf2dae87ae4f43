"""Fixtures: a real engine (real sandbox, real runner) over a fresh SQLite file per test."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.storage.database import db
from support.client import wait_terminal
from support.postgres import any_database, postgres_database, postgres_server  # noqa: F401 (fixtures, shared by every module)
from support.servers import live_server  # noqa: F401 (a fixture, shared by every module)
from support.slots import slot  # noqa: F401 (a fixture, shared by every module)


@pytest.fixture
def config(tmp_path) -> dict:
    """Test settings; a test may change them before asking for `app`."""
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'engine.db'}",
        "RUN_TIMEOUT_SECONDS": 2.0,
        "RUN_CPU_SECONDS": 2,
        # generous: only the reliability tests, which lower them, should ever be throttled
        "RUNS_PER_MINUTE_PER_SESSION": 1000,
        "ACTIVE_RUNS_PER_SESSION": 100,
        "ONE_SHOT_RUNS_PER_MINUTE_PER_IP": 10000,
    }


@pytest.fixture
def app(config) -> Iterator[Flask]:
    app = create_app(config)
    yield app
    app.extensions["engine"].runner.shutdown()
    # the pool's SQLite connections hold ~5 descriptors per app: left open, a whole suite's apps
    # pass 1024 and select() in the sandbox refuses them ("filedescriptor out of range")
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def run_code(client) -> Callable[..., dict]:
    """POST a one-shot run and long-poll it to its end; returns the final execution."""

    def run(source: str, stdin: str = "", language: str = "python", wait: float = 30) -> dict:
        rv = client.post("/executions", json={"language": language, "source_code": source, "stdin": stdin})
        assert rv.status_code == 202, rv.json
        return wait_terminal(client, rv.json["execution_id"], wait)

    return run
