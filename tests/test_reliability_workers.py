"""Two gunicorn workers: each execution claimed and run once, the machine-wide slot cap holds, long-polls answer promptly."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

from support.servers import query
from support.wait import wait_until

SLOTS = 2


def parse(stamp: str) -> float:
    return datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc).timestamp()


def test_two_workers_run_each_execution_exactly_once(live_server, tmp_path):
    # one run thread per process, two slots machine-wide: both processes must take work
    server = live_server(
        workers=2, RUN_SLOTS=SLOTS, RUN_WORKERS=1, ACTIVE_RUNS_PER_SESSION=100, RUNS_PER_MINUTE_PER_SESSION=1000
    )
    # both processes booting (each joins the local backbone with a socket, then self-tests its sandbox
    # and starts its runner): runs of 0.5 s leave a worker that boots slowly on a loaded machine
    # seconds of queued work to take
    wait_until(lambda: len(list((tmp_path / "e.db-live").glob("*.sock"))) == 2, 60, "both workers on the backbone")
    session_ids = []
    for n in range(3):
        status, body, _ = server.call("POST", "/code-sessions", {"source_code": f"import time\ntime.sleep(0.5)\nprint({n})"})
        assert status == 201
        session_ids.append(body["session_id"])

    results: dict[str, tuple[dict, float]] = {}
    errors: list[object] = []

    def submit_and_wait(session_id: str) -> None:
        try:
            status, body, _ = server.call("POST", f"/code-sessions/{session_id}/run", {})
            assert status == 202, body
            execution_id = body["execution_id"]
            results[execution_id] = server.poll_terminal(execution_id, seconds=90, wait=20)
        except BaseException as error:  # noqa: BLE001 (reported by the test thread)
            errors.append(error)

    threads = [threading.Thread(target=submit_and_wait, args=(session_ids[n % 3],)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(results) == 12

    rows = query(tmp_path / "e.db", "SELECT * FROM executions")
    assert len(rows) == 12
    for row in rows:
        assert row["status"] == "COMPLETED", dict(row)
        # claimed once, by one process
        assert row["attempts"] == 1, dict(row)
    claimers = {row["claimed_by"] for row in rows}
    assert len(claimers) == 2, claimers

    # the slot cap held across both processes: never more than SLOTS runs at once
    edges = sorted(
        [(parse(row["started_at"]), 1) for row in rows] + [(parse(row["finished_at"]), -1) for row in rows]
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert peak <= SLOTS

    # a long-poll answered promptly even when the other process ran the execution
    lags = [answered - parse(body["finished_at"]) for body, answered in results.values()]
    assert max(lags) < 1.5, lags
