"""Hundreds of long-polls in flight on a real gunicorn must not starve autosaves or runs."""
from __future__ import annotations

import http.client
import json
import os
import threading
import time

import pytest


POLLERS = 300


def call(port: int, method: str, path: str, body: dict | None = None, timeout: float = 30) -> tuple[int, dict]:
    """One request on its own connection: (status, JSON body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}
    finally:
        connection.close()


@pytest.fixture
def port(live_server, tmp_path) -> int:
    """A real gunicorn whose sleeping run outlasts the long-polls it holds open."""
    server = live_server(
        RUN_TIMEOUT_SECONDS=15,
        RUN_CPU_SECONDS=15,
        RUN_WORKERS=2,
        RUN_SLOTS=2,
        # slots of its own (lock files, uids, no cgroup tree): runs of other engines on this host
        # cannot take the slot the hello-world run needs, nor be cleared by this one
        SLOT_LOCK_DIR=str(tmp_path / "slots"),
        SANDBOX_UID_BASE=100_000 + os.getpid() % 1000 * 4,
        SANDBOX_CGROUP_NAME="",
        WARM_POOL={},
    )
    return server.port


def test_long_polls_do_not_starve_autosaves_or_runs(port):
    status, sleeper = call(port, "POST", "/executions", {"language": "python", "source_code": "import time; time.sleep(10)"})
    assert status == 202, sleeper
    status, session = call(port, "POST", "/code-sessions", {"source_code": "print('hello')"})
    assert status == 201, session

    results: list[tuple[int, str] | str] = []
    lock = threading.Lock()

    def long_poll() -> None:
        try:
            status, body = call(port, "GET", f"/executions/{sleeper['execution_id']}?wait=5", timeout=30)
            outcome: tuple[int, str] | str = (status, body.get("status", ""))
        except Exception as error:  # noqa: BLE001 (every poller reports how it ended)
            outcome = repr(error)
        with lock:
            results.append(outcome)

    pollers = [threading.Thread(target=long_poll, daemon=True) for _ in range(POLLERS)]
    for poller in pollers:
        poller.start()
    try:
        # every poll is held by the server before the autosaves start
        deadline = time.monotonic() + 15
        while True:
            status, workers = call(port, "GET", "/health/workers", timeout=5)
            assert status == 200
            if workers["listeners"] >= POLLERS:
                break
            assert time.monotonic() < deadline, f"only {workers['listeners']} long-polls in flight"
            time.sleep(0.05)
        polls_held_at = time.monotonic()

        for n in range(2, 12):
            started = time.monotonic()
            status, saved = call(port, "PATCH", f"/code-sessions/{session['session_id']}", {"source_code": f"print('hello')  # {n}", "version": n - 1})
            assert status == 200, saved
            assert saved["version"] == n
            assert time.monotonic() - started < 2, f"autosave {n} took {time.monotonic() - started:.2f} s"

        started = time.monotonic()
        status, run = call(port, "POST", f"/code-sessions/{session['session_id']}/run")
        assert status == 202, run
        status, done = call(port, "GET", f"/executions/{run['execution_id']}?wait=10")
        assert status == 200
        assert done["status"] == "COMPLETED", done
        assert done["stdout"] == "hello\n"
        assert time.monotonic() - started < 10

        # the autosaves and the run happened while the long-polls were still held
        assert time.monotonic() - polls_held_at < 5
        status, workers = call(port, "GET", "/health/workers", timeout=5)
        assert workers["listeners"] >= POLLERS
    finally:
        for poller in pollers:
            poller.join(timeout=30)

    assert all(not poller.is_alive() for poller in pollers)
    assert len(results) == POLLERS
    assert results == [(200, "RUNNING")] * POLLERS, sorted({str(r) for r in results})[:5]
