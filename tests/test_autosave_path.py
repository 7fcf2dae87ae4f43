"""The autosave's cheap path: its answer is exactly what the Swagger model marshals, and SQLite's writers
of several processes queue on one file lock (never in SQLite's sleeping busy handler) while the 409
version check stays exact across processes."""
from __future__ import annotations

import threading

from flask_restx import marshal

from app.api.schemas import SESSION, session_body
from app.storage.models import CodeSession
from support.servers import LiveServer


def test_the_autosave_answer_is_what_the_model_marshals(client, app):
    created = client.post("/code-sessions", json={"language": "python", "source_code": "print(1)"}).json
    sid = created["session_id"]
    rv = client.patch(f"/code-sessions/{sid}", json={"source_code": "print(2)", "files": {"util.py": "x = 1\n"}, "version": 1})
    assert rv.status_code == 200, rv.json
    with app.app_context():
        from app.storage.database import db

        row = db.session.get(CodeSession, sid)
        assert session_body(row) == marshal(row, SESSION)
        assert rv.json == marshal(row, SESSION)
    assert rv.json["version"] == 2 and rv.json["files"] == {"util.py": "x = 1\n"}
    assert rv.headers["ETag"] == '"2"'


def test_two_workers_autosave_at_once_and_the_version_check_stays_exact(tmp_path):
    server = LiveServer(tmp_path / "engine.db", tmp_path / "server.log", workers=2, WARM_POOL={})
    server.start()
    try:
        status, created, _ = server.call("POST", "/code-sessions", {"language": "python", "source_code": "v0"})
        assert status == 201, created
        sid = created["session_id"]
        outcomes: list[int] = []
        lock = threading.Lock()

        def save(n: int) -> None:
            # every client bases its save on version 1: exactly one may win, on whichever worker
            status, body, _ = server.call("PATCH", f"/code-sessions/{sid}", {"source_code": f"v{n}", "version": 1})
            with lock:
                outcomes.append(status)

        threads = [threading.Thread(target=save, args=(n,)) for n in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(outcomes) == [200] + [409] * 39, outcomes

        # unguarded saves from many clients: every one is acknowledged and counted once
        errors: list[object] = []

        def burst(n: int) -> None:
            for i in range(10):
                status, body, _ = server.call("PATCH", f"/code-sessions/{sid}", {"source_code": f"c{n}-{i}"})
                if status != 200:
                    errors.append((status, body))

        threads = [threading.Thread(target=burst, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors[:3]
        status, session, _ = server.call("GET", f"/code-sessions/{sid}")
        assert session["version"] == 2 + 200, session
        # the saves were spread over two processes sharing the file
        assert len(server.worker_pids()) == 2
    finally:
        server.stop()
