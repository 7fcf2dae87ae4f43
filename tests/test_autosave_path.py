"""The autosave's cheap path: its answer is exactly what the Swagger model marshals, and SQLite's writers
of several processes queue on one file lock (never in SQLite's sleeping busy handler) while the 409
version check stays exact across processes."""
from __future__ import annotations

import json
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


def _served_by_flask(app) -> list[str]:
    """The paths of the requests Flask's own machinery handled (a before_request hook of this test's app)."""
    seen: list[str] = []

    @app.before_request
    def note() -> None:
        from flask import request

        seen.append(request.path)

    return seen


def test_the_fast_lane_saves_and_answers_exactly_as_flask(app, client, capsys):
    flask_saw = _served_by_flask(app)
    sid = client.post("/code-sessions", json={"language": "python", "source_code": "v1"}).json["session_id"]
    answers = []
    for lane in (True, False):
        app.config["AUTOSAVE_FAST_LANE"] = lane
        version = client.get(f"/code-sessions/{sid}").json["version"]
        rv = client.patch(f"/code-sessions/{sid}", json={"source_code": f"lane={lane}", "version": version}, headers={"X-Request-ID": f"rid-{lane}"})
        assert rv.status_code == 200, rv.json
        answers.append(rv)
    by_lane, by_flask = answers
    # the lane's PATCH never reached Flask; the other did
    assert flask_saw.count(f"/code-sessions/{sid}") == 2 + 1  # the two GETs and Flask's PATCH
    assert by_lane.json == {**by_flask.json, "source_code": "lane=True", "version": by_flask.json["version"] - 1, "updated_at": by_lane.json["updated_at"]}
    for answer in answers:
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.headers["ETag"] == f'"{answer.json["version"]}"'
        assert int(answer.headers["Content-Length"]) == len(answer.data) and answer.data.endswith(b"}\n")
    assert by_lane.headers["X-Request-ID"] == "rid-True" and by_flask.headers["X-Request-ID"] == "rid-False"
    # one log line each, with the same fields
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if '"event": "request"' in line and '"PATCH"' in line]
    assert [line["request_id"] for line in lines] == ["rid-True", "rid-False"]
    assert {key for key in lines[0]} == {key for key in lines[1]}
    assert all(line["route"] == "/code-sessions/<string:session_id>" and line["status"] == 200 for line in lines)
    # the saves are counted under the same route label
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'engine_http_requests_total{method="PATCH",route="/code-sessions/<string:session_id>",status="200"} 2.0' in metrics


def test_what_the_fast_lane_does_not_serve_gets_flasks_answer(app, client):
    sid = client.post("/code-sessions", json={"language": "python", "source_code": "v1"}).json["session_id"]
    path = f"/code-sessions/{sid}"
    stale = client.patch(path, json={"source_code": "x", "version": 7})
    assert stale.status_code == 409 and stale.json["current_version"] == 1
    assert client.patch(path, json={"source_code": "x"}, headers={"If-Match": '"7"'}).status_code == 409
    assert client.patch(path, json={"source_code": "x"}, headers={"If-Match": '"1"'}).status_code == 200
    assert client.patch(path, json={"source_code": "x", "reason": "sneeze"}).status_code == 422
    assert client.patch(path, json={"source_code": "x", "version": True}).status_code == 422
    assert client.patch(path, json={"language": "klingon"}).status_code == 422
    assert client.patch(path, data=b'{"source_code": "\\ud800"}', content_type="application/json").status_code == 400
    assert client.patch(path, data=b"not json", content_type="application/json").status_code == 400
    assert client.patch("/code-sessions/00000000-0000-0000-0000-000000000000", json={"source_code": "x"}).status_code == 404
    files = client.patch(path, json={"source_code": "x", "files": {"util.py": "y = 1\n"}})
    assert files.status_code == 200 and files.json["files"] == {"util.py": "y = 1\n"}
    big = client.patch(path, json={"source_code": "x" * (app.config["SOURCE_MAX_BYTES"] + 1)})
    assert big.status_code == 413
    assert client.get(path).json["version"] == 3
