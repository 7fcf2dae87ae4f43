"""Backpressure and fairness: rate limits (429), the active-run cap (429), the queue bound (503), the history cap, fair claims."""
from __future__ import annotations

import sqlite3

import pytest
from support.client import wait_terminal

from app import create_app


def new_session(client, code: str = "print(1)") -> str:
    rv = client.post("/code-sessions", json={"source_code": code})
    assert rv.status_code == 201
    return rv.json["session_id"]


def assert_refused(rv, status: int, error: str) -> None:
    assert rv.status_code == status, rv.json
    assert rv.json["error"] == error
    assert rv.json["message"]
    assert 1 <= int(rv.headers["Retry-After"]) <= 60


def database(app) -> sqlite3.Connection:
    return sqlite3.connect(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"), isolation_level=None)


@pytest.fixture
def config(config):
    # runs stay QUEUED: these tests look at admission, not at running
    config.update(RUNNER_ENABLED=False)
    return config


def test_session_run_rate_limit_is_429_with_retry_after(client, config, app):
    app.config["RUNS_PER_MINUTE_PER_SESSION"] = 3
    noisy, quiet = new_session(client), new_session(client)
    for _ in range(3):
        assert client.post(f"/code-sessions/{noisy}/run").status_code == 202
    assert_refused(client.post(f"/code-sessions/{noisy}/run"), 429, "rate_limited")
    # another session is not affected
    assert client.post(f"/code-sessions/{quiet}/run").status_code == 202


def test_active_runs_per_session_are_capped(client, app):
    app.config["ACTIVE_RUNS_PER_SESSION"] = 2
    session = new_session(client)
    first = client.post(f"/code-sessions/{session}/run").json
    assert client.post(f"/code-sessions/{session}/run").status_code == 202
    assert_refused(client.post(f"/code-sessions/{session}/run"), 429, "too_many_active_runs")

    # once one of them is over, the session may run again
    database(app).execute("UPDATE executions SET status = 'COMPLETED' WHERE id = ?", (first["execution_id"],))
    assert client.post(f"/code-sessions/{session}/run").status_code == 202


def test_one_shot_runs_are_rate_limited_per_address(client, app):
    app.config["ONE_SHOT_RUNS_PER_MINUTE_PER_IP"] = 2
    body = {"language": "python", "source_code": "print(1)"}
    for _ in range(2):
        assert client.post("/executions", json=body).status_code == 202
    assert_refused(client.post("/executions", json=body), 429, "rate_limited")
    # another address has its own allowance
    rv = client.post("/executions", json=body, environ_base={"REMOTE_ADDR": "127.0.0.2"})
    assert rv.status_code == 202


def test_a_full_queue_is_503_with_retry_after(client, app):
    app.config["QUEUE_MAX"] = 2
    sessions = [new_session(client) for _ in range(3)]
    assert client.post(f"/code-sessions/{sessions[0]}/run").status_code == 202
    assert client.post("/executions", json={"language": "python", "source_code": "print(1)"}).status_code == 202
    assert_refused(client.post(f"/code-sessions/{sessions[1]}/run"), 503, "queue_full")
    assert_refused(client.post("/executions", json={"language": "python", "source_code": "print(1)"}), 503, "queue_full")


def test_while_writes_queue_a_full_queue_is_refused_without_waiting_its_turn(client, app):
    """Another request of this process is writing: the refusal comes from a plain read, at once."""
    import threading
    import time

    from app.storage import retry

    app.config["QUEUE_MAX"] = 1
    body = {"language": "python", "source_code": "print(1)"}
    assert client.post("/executions", json=body).status_code == 202
    holding, release = threading.Event(), threading.Event()

    def write_for_a_while():
        with app.app_context(), retry._one_writer_at_a_time():
            holding.set()
            release.wait(30)

    writer = threading.Thread(target=write_for_a_while)
    writer.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        assert_refused(client.post("/executions", json=body), 503, "queue_full")
        # the writer still holds the lock: a refusal that had queued for it would still be waiting
        assert writer.is_alive() and time.monotonic() - started < 10
    finally:
        release.set()
        writer.join()
    # and with nothing writing, the same refusal
    assert_refused(client.post("/executions", json=body), 503, "queue_full")


def test_at_the_history_cap_the_oldest_finished_executions_go(client, app):
    app.config["EXECUTIONS_KEPT_PER_SESSION"] = 3
    session = new_session(client)
    connection = database(app)
    ids = []
    for _ in range(5):
        rv = client.post(f"/code-sessions/{session}/run")
        assert rv.status_code == 202
        ids.append(rv.json["execution_id"])
        connection.execute("UPDATE executions SET status = 'COMPLETED' WHERE id = ?", (ids[-1],))

    rv = client.get(f"/code-sessions/{session}/executions")
    assert rv.headers["X-Total-Count"] == "3"
    assert [e["execution_id"] for e in rv.json] == ids[:1:-1]
    assert client.get(f"/executions/{ids[0]}").status_code == 404

    # runs still waiting are never dropped to make room
    connection.execute("UPDATE executions SET status = 'QUEUED' WHERE session_id = ?", (session,))
    assert client.post(f"/code-sessions/{session}/run").status_code == 202
    assert client.get(f"/code-sessions/{session}/executions").headers["X-Total-Count"] == "4"


class TestFairness:
    @pytest.fixture
    def config(self, config):
        config.update(RUNNER_ENABLED=True)
        return config

    @pytest.mark.parametrize("slots", [1, 2])
    def test_a_noisy_session_does_not_hold_back_a_quiet_one(self, config, slots):
        # one slot: the noisy session has nothing running at every turn, and must still wait its turn
        config["RUN_SLOTS"] = slots
        app = create_app(config)
        client = app.test_client()
        try:
            self.check_turns(client, app)
        finally:
            app.extensions["engine"].runner.shutdown()

    def check_turns(self, client, app):
        noisy = new_session(client, "import time\ntime.sleep(1)\nprint('noisy')")
        quiet = new_session(client, "print('quiet')")
        noisy_ids = [client.post(f"/code-sessions/{noisy}/run").json["execution_id"] for _ in range(6)]
        quiet_id = client.post(f"/code-sessions/{quiet}/run").json["execution_id"]

        for execution_id in [*noisy_ids, quiet_id]:
            assert wait_terminal(client, execution_id, 120)["status"] == "COMPLETED"

        rows = database(app).execute("SELECT id, queued_at, started_at FROM executions").fetchall()
        queued = {row[0]: row[1] for row in rows}
        started = {row[0]: row[2] for row in rows}
        # the noisy runs still waiting when the quiet one arrived
        backlog = [i for i in noisy_ids if started[i] > queued[quiet_id]]
        assert len(backlog) >= 3, started
        # first come first served would start all of them first; taking turns starts the quiet
        # run at the next free slot (one more noisy run if that slot freed with none of them running)
        ahead = [i for i in backlog if started[i] < started[quiet_id]]
        assert len(ahead) <= 1, (ahead, started, quiet_id)
