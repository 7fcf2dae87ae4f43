"""Two engine instances over one PostgreSQL database: how live a run on one is, seen from the other.

A private PostgreSQL (tests/support/postgres.py's server: initdb in a temp directory, never the system
service) and two engines over it. Each run is submitted to instance A and watched on instance B:
first chunk, from the moment the program printed it (its own clock: the host's) to the moment
B's events stream delivered it; end to answer, from the finished_at A recorded to the moment B's
long-poll answered. One run at a time: the figure is the path, not the client's concurrency.
"""
from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timezone
from pathlib import Path

from . import server
from .interactive import Events, call, start
from .load import summarize

ROOT = Path(__file__).resolve().parent.parent
# prints the moment it prints, then ends a little later
STAMPED = "import time\nprint(repr(time.time()), flush=True)\ntime.sleep(0.2)\nprint('end', flush=True)\n"


def backbone_section(workdir: Path, runs: int) -> dict[str, object]:
    sys.path.insert(0, str(ROOT / "tests"))
    from support.postgres import PostgresServer, query  # noqa: PLC0415 (the tests' private server)

    database = PostgresServer().start()
    engines: list[server.Server] = []
    try:
        url = database.new_database()
        for name in ("a", "b"):
            (workdir / name).mkdir(exist_ok=True)
            env = {
                **server.engine_settings(workdir, private_slots=True),
                "ENGINE_SQLALCHEMY_DATABASE_URI": url,
                "ENGINE_INSTANCE_PATH": str(workdir / name),
                "ENGINE_WARM_POOL": json.dumps({"python": 1}),
                "WEB_WORKERS": "1",
            }
            engines.append(server.start(f"engine-{name}", "wsgi:app", workdir, env))
        a, b = engines
        first_chunk: list[float] = []
        end_to_answer: list[float] = []
        for _ in range(runs):
            execution_id = _submit(a)
            events = Events(b.port, execution_id)
            events.start()
            answered: list[float] = []
            poll = threading.Thread(target=_long_poll, args=(b, execution_id, answered))
            poll.start()
            arrived = events.until("stdout")
            # Events stamps perf_counter; the program stamped the wall clock
            printed = _first_line(events, execution_id, b)
            first_chunk.append(time.time() - (time.perf_counter() - arrived) - printed)
            poll.join(30)
            events.join(30)
            finished = query(url, "SELECT finished_at FROM executions WHERE id = %s", execution_id)[0]["finished_at"]
            end_to_answer.append(answered[0] - finished.replace(tzinfo=timezone.utc).timestamp())
        return {
            "runs": runs,
            "first_chunk_ms": summarize(first_chunk),
            "end_to_answer_ms": summarize(end_to_answer),
            "note": "run submitted to instance A, events stream and long-poll on instance B (one PostgreSQL)",
        }
    finally:
        for engine in engines:
            engine.stop()
        database.stop()


def _submit(engine: server.Server) -> str:
    with _connection(engine) as connection:
        return start(connection, STAMPED, interactive=False)


def _long_poll(engine: server.Server, execution_id: str, answered: list[float]) -> None:
    while True:
        with _connection(engine, timeout=40) as connection:
            _, body = call(connection, "GET", f"/executions/{execution_id}?wait=30")
        if body["status"] in ("COMPLETED", "FAILED", "TIMEOUT"):
            answered.append(time.time())
            return


def _first_line(events: Events, execution_id: str, engine: server.Server) -> float:
    # the first stdout event's text was read by until(); the final event has the whole stdout
    events.until("final")
    with _connection(engine) as connection:
        _, body = call(connection, "GET", f"/executions/{execution_id}")
    return float(body["stdout"].splitlines()[0])


@contextmanager
def _connection(engine: server.Server, timeout: float = 30) -> Iterator[http.client.HTTPConnection]:
    """A connection of its own for one request: the long-poll runs beside the events stream."""
    connection = http.client.HTTPConnection(server.HOST, engine.port, timeout=timeout)
    try:
        yield connection
    finally:
        connection.close()
