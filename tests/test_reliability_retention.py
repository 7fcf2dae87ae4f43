"""Retention: old finished executions and idle sessions are pruned, by the runner on its own and by `flask prune`."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from support.client import wait_terminal

ROOT = Path(__file__).resolve().parent.parent


def database(app) -> sqlite3.Connection:
    return sqlite3.connect(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"), isolation_level=None)


class TestAutomatic:
    @pytest.fixture
    def config(self, config):
        config.update(RETENTION_INTERVAL_SECONDS=0.5, EXECUTION_RETENTION_SECONDS=1, SESSION_IDLE_RETENTION_SECONDS=3)
        return config

    def test_the_runner_prunes_on_its_own(self, client):
        idle = client.post("/code-sessions", json={"source_code": "print(1)"}).json["session_id"]
        busy = client.post("/code-sessions", json={"source_code": "print(2)"}).json["session_id"]
        one_shot = client.post("/executions", json={"language": "python", "source_code": "print(3)"}).json
        assert wait_terminal(client, one_shot["execution_id"])["status"] == "COMPLETED"

        deadline = time.monotonic() + 30
        while client.get(f"/code-sessions/{idle}").status_code != 404:
            assert time.monotonic() < deadline, "the idle session was not pruned"
            # the other session keeps autosaving: it is not idle
            assert client.patch(f"/code-sessions/{busy}", json={"source_code": "print(2)"}).status_code == 200
            time.sleep(0.3)
        assert client.get(f"/executions/{one_shot['execution_id']}").status_code == 404
        assert client.get(f"/code-sessions/{busy}").status_code == 200


class TestCommand:
    @pytest.fixture
    def config(self, config):
        config.update(RUNNER_ENABLED=False)
        return config

    def test_flask_prune(self, client, app):
        old_session = client.post("/code-sessions", json={}).json["session_id"]
        fresh_session = client.post("/code-sessions", json={}).json["session_id"]
        ids = [client.post(f"/code-sessions/{fresh_session}/run").json["execution_id"] for _ in range(3)]
        old_done, old_waiting, recent = ids
        connection = database(app)
        connection.execute("UPDATE code_sessions SET updated_at = datetime('now', '-8 days') WHERE id = ?", (old_session,))
        connection.execute(
            "UPDATE executions SET queued_at = datetime('now', '-2 days'), status = 'COMPLETED' WHERE id = ?", (old_done,)
        )
        connection.execute("UPDATE executions SET queued_at = datetime('now', '-2 days') WHERE id = ?", (old_waiting,))
        connection.execute("UPDATE executions SET status = 'COMPLETED' WHERE id = ?", (recent,))

        env = dict(os.environ, ENGINE_SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"])
        done = subprocess.run(
            [str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "prune"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "deleted 1 executions and 1 idle sessions" in done.stdout

        left = dict(connection.execute("SELECT id, status FROM executions").fetchall())
        # a run still waiting is never pruned, and the command did not start running it
        assert left == {old_waiting: "QUEUED", recent: "COMPLETED"}
        sessions = {row[0] for row in connection.execute("SELECT id FROM code_sessions")}
        assert sessions == {fresh_session}
