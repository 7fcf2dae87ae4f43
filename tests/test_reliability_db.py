"""A locked SQLite file: requests wait it out with backoff, and get 503 (never 500) past the retry budget."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest


@pytest.fixture
def config(config):
    # short waits so the test is quick: 0.1 s per statement, 1.5 s of retries in all
    config.update(DATABASE_BUSY_TIMEOUT_SECONDS=0.1, DATABASE_RETRY_SECONDS=1.5)
    return config


def hold_write_lock(app) -> sqlite3.Connection:
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    locker = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    return locker


def test_a_short_lock_is_waited_out(client, app):
    session = client.post("/code-sessions", json={"source_code": "print(1)"}).json
    url = f"/code-sessions/{session['session_id']}"

    locker = hold_write_lock(app)
    threading.Timer(0.6, locker.execute, ("COMMIT",)).start()
    started = time.monotonic()
    rv = client.patch(url, json={"source_code": "print(2)"})
    assert rv.status_code == 200, rv.json
    assert rv.json["version"] == 2
    # it did wait for the lock rather than slip past it
    assert time.monotonic() - started >= 0.5

    locker.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.6, locker.execute, ("COMMIT",)).start()
    rv = client.post(f"{url}/run")
    assert rv.status_code == 202, rv.json
    locker.close()


def test_a_lock_past_the_budget_is_503_with_retry_after(client, app):
    session = client.post("/code-sessions", json={"source_code": "print(1)"}).json
    url = f"/code-sessions/{session['session_id']}"

    locker = hold_write_lock(app)
    try:
        for method, path, body in (
            ("patch", url, {"source_code": "print(3)"}),
            ("post", f"{url}/run", {}),
            ("post", "/executions", {"language": "python", "source_code": "print(1)"}),
            ("post", "/code-sessions", {}),
            ("delete", url, None),
        ):
            started = time.monotonic()
            rv = getattr(client, method)(path, json=body)
            assert rv.status_code == 503, (path, rv.status_code, rv.json)
            assert rv.json["error"] == "database_busy"
            assert rv.json["message"]
            assert int(rv.headers["Retry-After"]) >= 1
            # bounded: the retry budget plus one statement's wait, not the lock's length
            assert time.monotonic() - started < 4
        # reads are not blocked by a writer in WAL mode
        assert client.get(url).status_code == 200
    finally:
        locker.execute("COMMIT")
        locker.close()

    rv = client.patch(url, json={"source_code": "print(4)"})
    assert rv.status_code == 200
    assert rv.json["version"] == 2
