"""GET /metrics: Prometheus text with runs, queue, run pool, warm pool and HTTP metrics, summed over workers."""
from __future__ import annotations

import re
import time

from prometheus_client.parser import text_string_to_metric_families
from support.servers import query

from app import create_app
from app.storage.models import RUNNING, move, utcnow

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def value(text: str, name: str, **labels: str) -> float | None:
    """The one sample called name with exactly these labels (le aside), or None."""
    found = [v for n, ls, v in samples(text) if n == name and ls == labels]
    return found[0] if found else None


def scrape(client) -> str:
    rv = client.get("/metrics")
    assert rv.status_code == 200
    assert rv.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return rv.get_data(as_text=True)


def scrape_until(read, predicate, seconds: float = 15) -> str:
    """Scrape until predicate(text) holds: a run's end is counted just after it is recorded."""
    deadline = time.monotonic() + seconds
    while True:
        text = read()
        if predicate(text):
            return text
        assert time.monotonic() < deadline, f"metrics never matched:\n{text}"
        time.sleep(0.1)


def test_runs_requests_and_pools_are_measured(app, client, run_code):
    assert run_code("print('hi')")["status"] == "COMPLETED"
    assert run_code("print('hi again')")["status"] == "COMPLETED"
    assert run_code("import sys\nsys.exit(3)")["status"] == "FAILED"
    rv = client.post("/code-sessions", json={"language": "python"})
    session_id = rv.json["session_id"]
    assert client.get(f"/code-sessions/{session_id}").status_code == 200
    assert client.get(f"/code-sessions/{session_id}").status_code == 200
    assert client.get("/executions/00000000-0000-0000-0000-000000000000").status_code == 404

    text = scrape_until(
        lambda: scrape(client),
        lambda t: value(t, "engine_runs_total", language="python", status="COMPLETED") == 2
        and value(t, "engine_runs_total", language="python", status="FAILED") == 1,
    )
    # histograms by language: every run observed once, buckets cumulative up to +Inf
    assert value(text, "engine_run_duration_seconds_count", language="python") == 3
    assert value(text, "engine_run_queue_wait_seconds_count", language="python") == 3
    buckets = [v for n, ls, v in samples(text) if n == "engine_run_duration_seconds_bucket" and ls["language"] == "python"]
    assert buckets == sorted(buckets) and buckets[-1] == 3
    assert value(text, "engine_run_duration_seconds_bucket", language="python", le="+Inf") == 3
    assert value(text, "engine_run_duration_seconds_sum", language="python") > 0

    # queue gauges from the database, run pool gauges from the runner
    assert value(text, "engine_queue_depth") == 0
    assert value(text, "engine_runs_running") == 0
    workers = app.extensions["engine"].runner.workers
    assert value(text, "engine_run_workers_busy") + value(text, "engine_run_workers_idle") == workers

    # warm pool: the default sizes; Python runs fork from a fork server (FORK_SERVER, on by
    # default: tests/test_fork_server.py), so Python has no warm sandboxes and its runs take none
    assert value(text, "engine_warm_pool_target", language="javascript") == 1
    assert value(text, "engine_warm_pool_ready", language="javascript") is not None
    assert value(text, "engine_warm_pool_target", language="python") is None
    assert value(text, "engine_warm_pool_hits_total") + value(text, "engine_warm_pool_misses_total") == 0

    # HTTP by route template and status; no id anywhere in a label
    assert value(text, "engine_http_requests_total", method="POST", route="/executions", status="202") == 3
    routes = {ls["route"] for n, ls, _ in samples(text) if n == "engine_http_requests_total"}
    [session_route] = [r for r in routes if re.fullmatch(r"/code-sessions/<(string:)?session_id>", r)]
    [execution_route] = [r for r in routes if re.fullmatch(r"/executions/<(string:)?execution_id>", r)]
    assert value(text, "engine_http_requests_total", method="GET", route=session_route, status="200") == 2
    assert value(text, "engine_http_requests_total", method="GET", route=execution_route, status="404") == 1
    assert value(text, "engine_http_request_duration_seconds_count", method="GET", route=session_route, status="200") == 2
    for name, labels, _ in samples(text):
        assert not any(UUID.search(label) for label in labels.values()), (name, labels)


def test_queue_gauges_are_read_from_the_database(config):
    # no runner: runs stay queued until the test moves them
    app = create_app({**config, "RUNNER_ENABLED": False})
    try:
        client = app.test_client()
        ids = []
        for _ in range(3):
            rv = client.post("/executions", json={"language": "python", "source_code": "print(1)"})
            assert rv.status_code == 202
            ids.append(rv.json["execution_id"])
        text = scrape(client)
        assert value(text, "engine_queue_depth") == 3
        assert value(text, "engine_runs_running") == 0
        with app.app_context():
            assert move(ids[0], RUNNING, started_at=utcnow())
        text = scrape(client)
        assert value(text, "engine_queue_depth") == 2
        assert value(text, "engine_runs_running") == 1
    finally:
        app.extensions["engine"].runner.shutdown()


def test_two_workers_count_every_run_in_one_scrape(live_server, tmp_path):
    # one run thread per worker: while one worker runs, the next run has to go to the other
    server = live_server(workers=2, RUN_WORKERS=1, WARM_POOL={})
    database = tmp_path / "e.db"

    def claimers() -> set[str]:
        return {row[0].split(":")[1] for row in query(database, "SELECT claimed_by FROM executions") if row[0]}

    program = "import time\ntime.sleep(0.6)\nprint('ok')"
    submitted = 0
    deadline = time.monotonic() + 40
    # other tests share the machine's run slots: try again until both workers have run something
    while len(claimers()) < 2 and time.monotonic() < deadline:
        ids = []
        for _ in range(2):
            status, body, _ = server.call("POST", "/executions", {"language": "python", "source_code": program})
            assert status == 202, body
            ids.append(body["execution_id"])
        submitted += 2
        for execution_id in ids:
            assert server.wait_terminal(execution_id)["status"] == "COMPLETED"
    assert len(claimers()) == 2, "one worker ran every run"
    assert set(claimers()) <= {str(pid) for pid in server.worker_pids()}

    def read() -> str:
        status, body, headers = server.call("GET", "/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        return body

    def counted(text: str) -> bool:
        return (
            value(text, "engine_runs_total", language="python", status="COMPLETED") == submitted
            # both processes' pools, one thread each: the live gauges are summed
            and value(text, "engine_run_workers_busy") + value(text, "engine_run_workers_idle") == 2
        )

    scrape_until(read, counted, seconds=20)
    # whichever worker answers, the scrape holds every process's counts
    for _ in range(6):
        text = read()
        assert counted(text), text
        assert value(text, "engine_run_duration_seconds_count", language="python") == submitted
        assert value(text, "engine_http_requests_total", method="POST", route="/executions", status="202") == submitted
