"""Discovery and operations: /health and its parts, /languages."""
from __future__ import annotations

import re
import time

from support.client import wait_terminal


def test_health_is_ok_with_the_isolation_in_force(client):
    rv = client.get("/health")
    assert rv.status_code == 200
    assert rv.json["status"] == "ok"
    isolation = rv.json["isolation"]
    assert isolation["isolation"] == "bubblewrap"
    assert isolation["available"] is True
    assert {"user", "pid", "network", "mount"} <= set(isolation["namespaces"])
    assert isolation["warning"] is None
    assert rv.json["limits"]["timeout_seconds"] == 2.0
    assert rv.json["limits"]["cpu_seconds"] == 2


def test_health_db_reports_a_reachable_database(client):
    rv = client.get("/health/db")
    assert rv.status_code == 200
    assert rv.json["status"] == "ok"
    assert rv.json["dialect"] == "sqlite"
    assert 0 <= rv.json["latency_ms"] < 5_000


def test_health_workers_reports_the_pool(client, app):
    rv = client.get("/health/workers")
    assert rv.status_code == 200
    workers = rv.json
    assert workers["pool_size"] == app.config["RUN_WORKERS"] >= 1
    assert workers["busy"] == 0
    assert workers["queue_depth"] == 0
    assert workers["accepting"] is True

    rv = client.post("/executions", json={"language": "python", "source_code": "import time; time.sleep(30)"})
    execution_id = rv.json["execution_id"]
    deadline = time.monotonic() + 10
    # a worker is busy a moment before its claim's RUNNING is committed: both are waited for
    while (client.get("/health/workers").json["busy"], client.get("/health/workers").json["running"]) != (1, 1):
        assert time.monotonic() < deadline, "the sleeping run never made a worker busy and RUNNING"
        client.get(f"/executions/{execution_id}?wait=0.2")

    assert wait_terminal(client, execution_id)["status"] == "TIMEOUT"
    deadline = time.monotonic() + 5
    while client.get("/health/workers").json["busy"] != 0:
        assert time.monotonic() < deadline, "the worker stayed busy after the run ended"
        client.get(f"/executions/{execution_id}?wait=0.1")


def test_health_workers_counts_the_queue(config, request):
    config["RUNNER_ENABLED"] = False
    client = request.getfixturevalue("client")

    for _ in range(3):
        rv = client.post("/executions", json={"language": "python", "source_code": "print(1)"})
        assert rv.status_code == 202

    rv = client.get("/health/workers")
    assert rv.status_code == 200
    assert rv.json["queue_depth"] == 3
    assert rv.json["busy"] == 0


def test_languages_lists_python_with_its_version_and_limits(client):
    rv = client.get("/languages")
    assert rv.status_code == 200
    by_name = {language["name"]: language for language in rv.json["languages"]}
    python = by_name["python"]
    assert re.fullmatch(r"3\.\d+\.\d+.*", python["version"])
    limits = python["limits"]
    assert limits["timeout_seconds"] == 2.0
    assert limits["cpu_seconds"] == 2
    for name in ("memory_bytes", "processes", "output_bytes"):
        assert isinstance(limits[name], int) and limits[name] > 0


def test_the_listed_python_version_is_the_one_that_runs(client, run_code):
    listed = {language["name"]: language["version"] for language in client.get("/languages").json["languages"]}

    done = run_code("import platform; print(platform.python_version())")
    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == f"{listed['python']}\n"
