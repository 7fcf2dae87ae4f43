"""kill -9 of gunicorn and its workers mid-burst, then a restart: every run ends, no autosave is lost."""
from __future__ import annotations

from support.servers import query

from support.wait import wait_until

GENEROUS = {"ACTIVE_RUNS_PER_SESSION": 100, "RUNS_PER_MINUTE_PER_SESSION": 1000, "RUN_TIMEOUT_SECONDS": 5.0}
SLOW = "import time\ntime.sleep(0.5)\nprint('ran {n}')\n"


def test_kill_9_mid_burst_then_restart_ends_every_run_and_keeps_every_autosave(live_server, tmp_path):
    database = tmp_path / "e.db"
    server = live_server(**GENEROUS)

    saved = {}
    for n in range(4):
        status, session, _ = server.call("POST", "/code-sessions", {"language": "python"})
        assert status == 201
        for edit in range(5):
            code = SLOW.format(n=f"{n}.{edit}")
            status, body, _ = server.call("PATCH", f"/code-sessions/{session['session_id']}", {"source_code": code})
            assert status == 200, body
        saved[session["session_id"]] = (body["version"], code)

    ids = []
    for n in range(12):
        session_id = list(saved)[n % len(saved)]
        status, body, _ = server.call("POST", f"/code-sessions/{session_id}/run", {})
        assert status == 202, body
        ids.append(body["execution_id"])

    def running() -> int:
        return query(database, "SELECT count(*) FROM executions WHERE status = 'RUNNING'")[0][0]

    wait_until(running, 30, "a run in progress")
    server.kill9()

    at_kill = {row["id"]: row["status"] for row in query(database, "SELECT id, status FROM executions")}
    assert set(at_kill) == set(ids)
    assert "RUNNING" in at_kill.values()
    # the burst was still under way: some never started
    assert "QUEUED" in at_kill.values()

    server = live_server(**GENEROUS)

    def all_terminal() -> bool:
        return not query(database, "SELECT id FROM executions WHERE status IN ('QUEUED', 'RUNNING')")

    wait_until(all_terminal, 90, "every execution terminal after the restart")

    rows = {row["id"]: row for row in query(database, "SELECT * FROM executions")}
    for execution_id, before in at_kill.items():
        row = rows[execution_id]
        if before == "QUEUED":
            assert row["status"] == "COMPLETED", dict(row)
            assert row["stdout"].startswith("ran "), dict(row)
            assert row["attempts"] == 1
        elif before == "RUNNING":
            # the engine that ran it died: not re-run, ended with the reason
            assert (row["status"], row["error"]) == ("FAILED", "interrupted"), dict(row)
            assert row["attempts"] == 1
        else:
            assert row["status"] in {"COMPLETED", "FAILED", "TIMEOUT"}

    # and the API agrees
    for execution_id in ids:
        status, body, _ = server.call("GET", f"/executions/{execution_id}")
        assert status == 200
        assert body["status"] == rows[execution_id]["status"]

    for session_id, (version, code) in saved.items():
        status, body, _ = server.call("GET", f"/code-sessions/{session_id}")
        assert status == 200
        assert (body["version"], body["source_code"]) == (version, code)
