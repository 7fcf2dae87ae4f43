"""SIGTERM to a real gunicorn: no new runs, the run under way finishes, queued runs wait for the next start."""
from __future__ import annotations

import http.client
import json
import time

from support.servers import query

from support.wait import wait_until

SETTINGS = {"RUN_SLOTS": 1, "RUN_WORKERS": 1, "ACTIVE_RUNS_PER_SESSION": 100, "RUNS_PER_MINUTE_PER_SESSION": 1000}


def test_sigterm_lets_the_run_finish_and_leaves_queued_ones_for_the_next_start(live_server, tmp_path):
    database = tmp_path / "e.db"
    server = live_server(**SETTINGS)
    status, slow, _ = server.call("POST", "/code-sessions", {"source_code": "import time\ntime.sleep(2)\nprint('done')"})
    status, quick, _ = server.call("POST", "/code-sessions", {"source_code": "print('later')"})
    status, body, _ = server.call("POST", f"/code-sessions/{slow['session_id']}/run", {})
    assert status == 202
    running_id = body["execution_id"]
    wait_until(
        lambda: query(database, "SELECT status FROM executions WHERE id = ?", running_id)[0][0] == "RUNNING",
        60, "the slow run started",
    )
    queued_ids = []
    for _ in range(2):
        status, body, _ = server.call("POST", f"/code-sessions/{quick['session_id']}/run", {})
        assert status == 202
        queued_ids.append(body["execution_id"])

    # a kept-alive connection: gunicorn still answers on it for a moment after SIGTERM
    kept = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    kept.request("GET", "/health")
    assert kept.getresponse().read()

    server.terminate()
    time.sleep(0.5)
    kept.request("POST", f"/code-sessions/{quick['session_id']}/run", body=b"{}", headers={"Content-Type": "application/json"})
    response = kept.getresponse()
    body = json.loads(response.read())
    assert response.status == 503, body
    assert body["error"] == "shutting_down"
    assert response.getheader("Retry-After")
    kept.close()
    # new connections are refused
    try:
        server.call("POST", f"/code-sessions/{quick['session_id']}/run", {}, timeout=5)
        raise AssertionError("a new connection was served during shutdown")
    except OSError:
        pass

    assert server.wait_stopped() == 0
    rows = {row["id"]: row for row in query(database, "SELECT * FROM executions")}
    assert len(rows) == 3
    assert rows[running_id]["status"] == "COMPLETED"
    assert rows[running_id]["stdout"] == "done\n"
    for execution_id in queued_ids:
        assert (rows[execution_id]["status"], rows[execution_id]["attempts"]) == ("QUEUED", 0)

    server = live_server(**SETTINGS)
    for execution_id in queued_ids:
        done = server.wait_terminal(execution_id)
        assert (done["status"], done["stdout"]) == ("COMPLETED", "later\n")
