"""Two engine instances (two gunicorns, own ports and instance folders) over one PostgreSQL database: both
migrate it at once, both run work, each execution runs exactly once, and either answers any long-poll."""
from __future__ import annotations

import threading
from datetime import timezone

from app.storage import schema
from support.postgres import query
from support.servers import LiveServer

RUNS = 12


def test_two_instances_share_one_postgres_database(postgres_server, tmp_path):
    url = postgres_server.new_database()
    settings = dict(
        # four processes, one run thread each, and a slot for each: every dispatcher can take work
        RUN_WORKERS=1, RUN_SLOTS=4, WARM_POOL={"python": 1},
        ACTIVE_RUNS_PER_SESSION=100, RUNS_PER_MINUTE_PER_SESSION=1000, DATABASE_POOL_SIZE=4,
    )
    servers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        servers.append(LiveServer(url, tmp_path / f"{name}.log", workers=2, env={"ENGINE_INSTANCE_PATH": str(tmp_path / name)}, **settings))
    try:
        # both at once: four workers find one empty database and migrate it together
        starting = [threading.Thread(target=server.start) for server in servers]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join(120)
        assert all(server.running and server.port for server in servers)
        a, b = servers
        for server in servers:
            status, body, _ = server.call("GET", "/health/db")
            assert status == 200 and body["dialect"] == "postgresql", body
        assert [row["version_num"] for row in query(url, "SELECT version_num FROM alembic_version")] == [schema.head()]

        sessions = []
        for n in range(4):
            status, body, _ = servers[n % 2].call(
                "POST", "/code-sessions", {"source_code": "import time\ntime.sleep(0.5)\nprint(input())"}
            )
            assert status == 201, body
            sessions.append(body["session_id"])

        answers: dict[str, tuple[dict, float, LiveServer]] = {}
        errors: list[BaseException] = []

        def run_here_poll_there(n: int) -> None:
            submit_to, poll_on = servers[n % 2], servers[(n + 1) % 2]
            try:
                status, body, _ = submit_to.call("POST", f"/code-sessions/{sessions[n % 4]}/run", {"stdin": str(n)})
                assert status == 202, body
                execution_id = body["execution_id"]
                body, answered = poll_on.poll_terminal(execution_id, seconds=60, wait=20)
                assert body["stdout"] == f"{n}\n", body
                answers[execution_id] = (body, answered, poll_on)
            except BaseException as error:  # noqa: BLE001 (reported by the test thread)
                errors.append(error)

        threads = [threading.Thread(target=run_here_poll_there, args=(n,)) for n in range(RUNS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert not errors, errors
        assert len(answers) == RUNS

        rows = query(url, "SELECT id, status, attempts, claimed_by, finished_at FROM executions")
        assert len(rows) == RUNS
        assert {(row["status"], row["attempts"]) for row in rows} == {("COMPLETED", 1)}
        # claimed_by is host:pid:nonce; each instance's workers ran some
        pids_of = {server: set(server.worker_pids()) for server in servers}
        ran_by = {row["id"]: next(s for s, pids in pids_of.items() if int(row["claimed_by"].split(":")[1]) in pids) for row in rows}
        assert set(ran_by.values()) == {a, b}, {row["claimed_by"] for row in rows}

        # a long-poll on one instance answered promptly for runs the other instance ran
        lags = [
            answered - row["finished_at"].replace(tzinfo=timezone.utc).timestamp()
            for row in rows
            for body, answered, poll_on in [answers[row["id"]]]
            if ran_by[row["id"]] is not poll_on
        ]
        assert lags, "no run was polled on the instance that did not run it"
        assert max(lags) < 1.5, lags
    finally:
        for server in servers:
            server.stop()
