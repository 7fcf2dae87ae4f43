"""Code history: coalesced revisions, restore with its version guard, runs pinned to a revision, retention."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from support.auth import ALICE, BOB, assert_unauthorized, secured  # noqa: F401 (secured is a fixture)
from support.client import wait_terminal

from app import create_app
from app.storage import retention
from app.storage.database import db


def database(app) -> sqlite3.Connection:
    return sqlite3.connect(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"), isolation_level=None)


@pytest.fixture
def config(config):
    # a long pause: only the tests that wait for one see a pause
    config.update(REVISION_PAUSE_SECONDS=30, REVISION_MAX_AGE_SECONDS=300)
    return config


def new_session(client, code: str = "print(0)") -> str:
    rv = client.post("/code-sessions", json={"source_code": code})
    assert rv.status_code == 201
    return rv.json["session_id"]


def history(client, session_id: str, **query: int) -> list[dict]:
    rv = client.get(f"/code-sessions/{session_id}/revisions", query_string=query)
    assert rv.status_code == 200, rv.json
    return rv.json


def test_typing_is_coalesced_and_a_paste_starts_a_revision(client):
    session_id = new_session(client)
    for n in range(1, 6):
        assert client.patch(f"/code-sessions/{session_id}", json={"source_code": f"print({n})"}).status_code == 200
    rv = client.patch(f"/code-sessions/{session_id}", json={"source_code": "pasted = 1", "reason": "paste"})
    assert rv.status_code == 200
    client.patch(f"/code-sessions/{session_id}", json={"source_code": "pasted = 12"})

    revisions = history(client, session_id)
    assert [(r["revision"], r["reason"], r["version"]) for r in revisions] == [
        (4, "typing", 8),
        (3, "paste", 7),
        (2, "typing", 6),
        (1, "create", 1),
    ]
    assert revisions[0]["size_bytes"] == len("pasted = 12")
    # the coalesced revision holds the last save of the burst
    rv = client.get(f"/code-sessions/{session_id}/revisions/2")
    assert rv.status_code == 200
    assert rv.json["source_code"] == "print(5)" and rv.json["files"] is None
    assert client.get(f"/code-sessions/{session_id}/revisions/1").json["source_code"] == "print(0)"


def test_the_newest_typing_revision_follows_the_session_and_a_stale_save_adds_none(client):
    session_id = new_session(client)
    for n in range(1, 4):
        client.patch(f"/code-sessions/{session_id}", json={"source_code": "x" * n, "version": n})
        head = client.get(f"/code-sessions/{session_id}/revisions/2").json
        assert (head["version"], head["source_code"], head["size_bytes"], head["reason"]) == (n + 1, "x" * n, n, "typing")
    assert client.patch(f"/code-sessions/{session_id}", json={"source_code": "stale", "version": 1, "reason": "paste"}).status_code == 409
    assert [r["revision"] for r in history(client, session_id)] == [2, 1]
    assert client.get(f"/code-sessions/{session_id}/revisions/2").json["source_code"] == "xxx"


def test_the_list_pages_newest_first_with_a_total(client):
    session_id = new_session(client)
    for n in range(4):
        client.patch(f"/code-sessions/{session_id}", json={"source_code": f"x = {n}", "reason": "paste"})
    rv = client.get(f"/code-sessions/{session_id}/revisions?limit=2&offset=1")
    assert rv.status_code == 200 and rv.headers["X-Total-Count"] == "5"
    assert [r["revision"] for r in rv.json] == [4, 3]
    assert client.get(f"/code-sessions/{session_id}/revisions?limit=0").status_code == 400
    assert client.get("/code-sessions/nope/revisions").status_code == 404
    assert client.get(f"/code-sessions/{session_id}/revisions/99").status_code == 404
    # past the database's integers: names nothing, like any other unknown revision
    huge = 10**20
    assert client.get(f"/code-sessions/{session_id}/revisions/{huge}").status_code == 404
    assert client.post(f"/code-sessions/{session_id}/revisions/{huge}/restore", json={}).status_code == 404
    assert client.patch(f"/code-sessions/{session_id}", json={"source_code": "x", "reason": "restore"}).status_code == 422


class TestPause:
    @pytest.fixture
    def config(self, config):
        config.update(REVISION_PAUSE_SECONDS=0.3)
        return config

    def test_a_pause_starts_a_new_revision(self, client):
        session_id = new_session(client)
        client.patch(f"/code-sessions/{session_id}", json={"source_code": "a"})
        client.patch(f"/code-sessions/{session_id}", json={"source_code": "ab"})
        time.sleep(0.4)
        client.patch(f"/code-sessions/{session_id}", json={"source_code": "abc"})
        assert [(r["revision"], r["size_bytes"]) for r in history(client, session_id)] == [(3, 3), (2, 2), (1, 8)]


def test_restore_makes_a_new_version_and_keeps_history(client):
    session_id = new_session(client, "print('first')")
    client.patch(f"/code-sessions/{session_id}", json={"source_code": "print('second')"})

    rv = client.post(f"/code-sessions/{session_id}/revisions/1/restore", json={"version": 2})
    assert rv.status_code == 200, rv.json
    assert rv.json["source_code"] == "print('first')" and rv.json["version"] == 3
    assert rv.headers["ETag"] == '"3"'
    assert [(r["revision"], r["reason"]) for r in history(client, session_id)] == [(3, "restore"), (2, "typing"), (1, "create")]
    assert client.get(f"/code-sessions/{session_id}/revisions/2").json["source_code"] == "print('second')"
    # typing after a restore never overwrites the restore's revision
    client.patch(f"/code-sessions/{session_id}", json={"source_code": "print('third')"})
    assert client.get(f"/code-sessions/{session_id}/revisions/3").json["source_code"] == "print('first')"


def test_a_stale_restore_is_a_409_with_the_current_version(client):
    session_id = new_session(client)
    client.patch(f"/code-sessions/{session_id}", json={"source_code": "print(1)"})

    rv = client.post(f"/code-sessions/{session_id}/revisions/1/restore", json={"version": 1})
    assert rv.status_code == 409 and rv.json["current_version"] == 2
    rv = client.post(f"/code-sessions/{session_id}/revisions/1/restore", headers={"If-Match": '"1"'})
    assert rv.status_code == 409 and rv.json["error"] == "version_conflict"
    assert client.post(f"/code-sessions/{session_id}/revisions/1/restore", json={"version": "x"}).status_code == 400
    assert client.post(f"/code-sessions/{session_id}/revisions/9/restore", json={"version": 2}).status_code == 404
    # nothing changed: still version 2, two revisions
    assert client.get(f"/code-sessions/{session_id}").json["version"] == 2
    assert len(history(client, session_id)) == 2
    rv = client.post(f"/code-sessions/{session_id}/revisions/1/restore", headers={"If-Match": '"2"'})
    assert rv.status_code == 200 and rv.json["source_code"] == "print(0)"


def test_an_execution_points_at_the_exact_revision_it_ran(client):
    session_id = new_session(client, "print('ran')")
    client.patch(f"/code-sessions/{session_id}", json={"source_code": "print('ran 2')"})
    rv = client.post(f"/code-sessions/{session_id}/run")
    assert rv.status_code == 202
    assert rv.json["revision"] == 2
    # typing on after the run starts a new revision: revision 2 stays what ran
    client.patch(f"/code-sessions/{session_id}", json={"source_code": "print('changed')"})
    finished = wait_terminal(client, rv.json["execution_id"])
    assert finished["stdout"] == "ran 2\n" and finished["revision"] == 2
    pinned = client.get(f"/code-sessions/{session_id}/revisions/2").json
    assert pinned["reason"] == "run" and pinned["source_code"] == "print('ran 2')"
    assert history(client, session_id)[0]["revision"] == 3
    one_shot = client.post("/executions", json={"language": "python", "source_code": "print(1)"}).json
    assert one_shot["revision"] is None


def test_two_tabs_autosaving_at_once_keep_a_consistent_history(app):
    client = app.test_client()
    session_id = new_session(client)
    outcomes: list[int] = []
    lock = threading.Lock()

    def tab(name: str) -> None:
        own = app.test_client()
        for n in range(25):
            current = own.get(f"/code-sessions/{session_id}").json["version"]
            reason = "paste" if n % 7 == 0 else "typing"
            rv = own.patch(
                f"/code-sessions/{session_id}", json={"source_code": f"{name} {n}", "version": current, "reason": reason}
            )
            with lock:
                outcomes.append(rv.status_code)

    tabs = [threading.Thread(target=tab, args=(name,)) for name in ("left", "right")]
    for thread in tabs:
        thread.start()
    for thread in tabs:
        thread.join()

    assert set(outcomes) <= {200, 409}
    session = client.get(f"/code-sessions/{session_id}").json
    assert session["version"] == 1 + outcomes.count(200)
    revisions = history(client, session_id, limit=100)
    numbers = [r["revision"] for r in revisions]
    assert numbers == list(range(len(numbers), 0, -1))
    versions = [r["version"] for r in revisions]
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions)
    head = client.get(f"/code-sessions/{session_id}/revisions/{numbers[0]}").json
    assert head["version"] == session["version"] and head["source_code"] == session["source_code"]


class TestRetention:
    @pytest.fixture
    def config(self, config):
        config.update(REVISIONS_KEPT_PER_SESSION=3, RUNNER_ENABLED=False)
        return config

    def test_a_session_keeps_its_newest_revisions_up_to_the_cap(self, client):
        session_id = new_session(client)
        for n in range(5):
            client.patch(f"/code-sessions/{session_id}", json={"source_code": f"x = {n}", "reason": "paste"})
        rv = client.get(f"/code-sessions/{session_id}/revisions")
        assert rv.headers["X-Total-Count"] == "3"
        assert [r["revision"] for r in rv.json] == [6, 5, 4]
        assert client.get(f"/code-sessions/{session_id}/revisions/1").status_code == 404

    def test_revisions_go_with_their_session(self, client, app):
        kept, deleted, idle = new_session(client), new_session(client), new_session(client)
        assert client.delete(f"/code-sessions/{deleted}").status_code == 204
        connection = database(app)
        connection.execute("UPDATE code_sessions SET updated_at = datetime('now', '-8 days') WHERE id = ?", (idle,))
        with app.app_context():
            assert retention.prune().sessions == 1
        left = {row[0] for row in connection.execute("SELECT session_id FROM code_revisions")}
        assert left == {kept}


class TestOnEveryDatabase:
    """The same history on PostgreSQL: the hot path runs on the driver's own cursor, in its parameter style."""

    @pytest.fixture
    def config(self, config, any_database):
        config.update(SQLALCHEMY_DATABASE_URI=any_database, WARM_POOL={})
        return config

    @pytest.fixture
    def app(self, app):
        yield app
        # the PostgreSQL connections go back before the server does
        app.extensions["engine"].runner.shutdown()
        with app.app_context():
            db.engine.dispose()

    def test_coalescing_paste_restore_and_run(self, client):
        test_typing_is_coalesced_and_a_paste_starts_a_revision(client)
        test_restore_makes_a_new_version_and_keeps_history(client)
        test_an_execution_points_at_the_exact_revision_it_ran(client)

    def test_two_tabs(self, app):
        test_two_tabs_autosaving_at_once_keep_a_consistent_history(app)


def test_another_users_history_answers_404_and_diagnostics_need_a_token(secured):
    app = create_app({**secured, "RUNNER_ENABLED": False})
    try:
        check_history_and_diagnostics_of_another_user(app.test_client())
    finally:
        # the pre-started linter sandboxes of its first check end with it
        app.extensions["engine"].runner.shutdown()


def check_history_and_diagnostics_of_another_user(client) -> None:  # noqa: ANN001
    session_id = client.post("/code-sessions", json={"source_code": "print(1)"}, headers=ALICE).json["session_id"]
    for rv in (
        client.get(f"/code-sessions/{session_id}/revisions", headers=BOB),
        client.get(f"/code-sessions/{session_id}/revisions/1", headers=BOB),
        client.post(f"/code-sessions/{session_id}/revisions/1/restore", json={}, headers=BOB),
    ):
        assert rv.status_code == 404 and rv.json["error"] == "not_found"
    assert client.get(f"/code-sessions/{session_id}/revisions/1", headers=ALICE).json["source_code"] == "print(1)"
    assert_unauthorized(client.post("/diagnostics", json={"language": "python", "source_code": "x"}), invalid=False)
    assert client.post("/diagnostics", json={"language": "python", "source_code": "x"}, headers=ALICE).status_code == 200
