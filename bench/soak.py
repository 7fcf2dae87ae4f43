"""Soak: 200 clients mixing autosaves, runs and long-polls for 60 s against a real gunicorn on loopback.

Run with `.venv/bin/python -m bench.soak [--clients N] [--seconds S] [--workers W]`. It starts its own
server over a temporary database, stops by itself, and reports throughput, p50/p99 latency per
request kind, answers by status, and whether every accepted execution ended (none lost or stuck).
Exit status 0 when the targets hold: no 5xx but 503, no time-outs, nothing lost or stuck.
"""
from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = {"COMPLETED", "FAILED", "TIMEOUT"}
PROGRAMS = (
    "print('hello')",
    "import time\ntime.sleep(0.2)\nprint('slept')",
    "print(sum(range(100000)))",
)
CLIENT_TIMEOUT_SECONDS = 40
START_SECONDS = 60
DRAIN_SECONDS = 180


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.status: collections.Counter[str] = collections.Counter()
        self.by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.accepted: set[str] = set()
        self.turnaround: list[float] = []

    def record(self, kind: str, status: str, seconds: float) -> None:
        with self.lock:
            self.latency[kind].append(seconds)
            self.status[status] += 1
            self.by_kind[kind][status] += 1


class Client:
    """One learner: a session, autosaving as they type, running now and then and long-polling the result."""

    def __init__(self, port: int, stats: Stats, stop_at: float, rng: random.Random) -> None:
        self.port = port
        self.stats = stats
        self.stop_at = stop_at
        self.rng = rng
        self.connection: http.client.HTTPConnection | None = None

    def call(self, kind: str, method: str, path: str, body: object = None) -> tuple[int, dict]:
        started = time.monotonic()
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT_SECONDS)
            try:
                data = None if body is None else json.dumps(body).encode()
                self.connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
                response = self.connection.getresponse()
                raw = response.read()
                self.stats.record(kind, str(response.status), time.monotonic() - started)
                return response.status, json.loads(raw) if raw else {}
            except (TimeoutError, socket.timeout):
                self.close()
                self.stats.record(kind, "timeout", time.monotonic() - started)
                return 0, {}
            except (ConnectionError, http.client.HTTPException, OSError):
                # a kept-alive connection the server closed: one fresh try, then count it
                self.close()
                if attempt == 1:
                    self.stats.record(kind, "connection_error", time.monotonic() - started)
                    return 0, {}
        return 0, {}

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def run(self) -> None:
        status, session = self.call("create", "POST", "/code-sessions", {"language": "python", "source_code": ""})
        if status != 201:
            return
        url = f"/code-sessions/{session['session_id']}"
        while time.monotonic() < self.stop_at:
            roll = self.rng.random()
            if roll < 0.75:
                self.call("autosave", "PATCH", url, {"source_code": self.rng.choice(PROGRAMS)})
            elif roll < 0.80:
                self.call("read", "GET", url)
            else:
                self.run_once(url)
            time.sleep(self.rng.uniform(0.05, 0.4))
        self.close()

    def run_once(self, url: str) -> None:
        started = time.monotonic()
        status, execution = self.call("run", "POST", f"{url}/run", {})
        if status != 202:
            if status in (429, 503):
                time.sleep(min(2.0, self.rng.uniform(0.5, 2.0)))
            return
        with self.stats.lock:
            self.stats.accepted.add(execution["execution_id"])
        while time.monotonic() < self.stop_at:
            status, execution = self.call("longpoll", "GET", f"/executions/{execution['execution_id']}?wait=10")
            if status != 200:
                return
            if execution["status"] in TERMINAL:
                with self.stats.lock:
                    self.stats.turnaround.append(time.monotonic() - started)
                return


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(database: Path, port: int, workers: int, log: Path) -> subprocess.Popen:
    env = dict(
        os.environ,
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_WORKERS=str(workers),
        ENGINE_SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}",
        # the queue a 2-core host drains in a few seconds: past it, 503 + Retry-After
        ENGINE_QUEUE_MAX=os.environ.get("ENGINE_QUEUE_MAX", "64"),
    )
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "-c", "app/gunicorn_conf.py", "wsgi:app"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited:\n{log.read_text()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    sys.exit(f"gunicorn not serving after {START_SECONDS} s")


def unfinished(database: Path) -> int:
    connection = sqlite3.connect(database, timeout=30)
    try:
        return connection.execute("SELECT count(*) FROM executions WHERE status IN ('QUEUED', 'RUNNING')").fetchone()[0]
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    database = workdir / "e.db"
    port = free_port()
    server = start_server(database, port, args.workers, workdir / "gunicorn.log")
    stats = Stats()
    try:
        started = time.monotonic()
        stop_at = started + args.seconds
        clients = [Client(port, stats, stop_at, random.Random(n)) for n in range(args.clients)]
        threads = [threading.Thread(target=client.run, daemon=True) for client in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(1.0, stop_at + CLIENT_TIMEOUT_SECONDS + 5 - time.monotonic()))
        elapsed = time.monotonic() - started

        drain_deadline = time.monotonic() + DRAIN_SECONDS
        while unfinished(database) and time.monotonic() < drain_deadline:
            time.sleep(0.5)
        stuck = unfinished(database)
        connection = sqlite3.connect(database, timeout=30)
        stored = {row[0]: row[1] for row in connection.execute("SELECT id, status FROM executions")}
        connection.close()
        lost = [i for i in stats.accepted if i not in stored]
        outcomes = collections.Counter(stored[i] for i in stats.accepted if i in stored)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()

    total = sum(stats.status.values())
    print(f"soak: {args.clients} clients, {elapsed:.1f} s, {args.workers} worker process(es), loopback port {port}")
    print(f"throughput: {total / elapsed:.1f} requests/s ({total} requests)")
    print(f"{'kind':<10}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}  statuses")
    for kind, values in sorted(stats.latency.items()):
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(stats.by_kind[kind].items()))
        print(f"{kind:<10}{len(values):>8}{percentile(values, 0.5) * 1000:>10.1f}{percentile(values, 0.99) * 1000:>10.1f}  {statuses}")
    print(f"run turnaround (202 to terminal): p50 {percentile(stats.turnaround, 0.5):.2f} s, p99 {percentile(stats.turnaround, 0.99):.2f} s")
    print("answers by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(stats.status.items())))
    print(f"executions accepted: {len(stats.accepted)}, outcomes: {dict(outcomes)}")
    print(f"lost: {len(lost)}, stuck (not terminal {DRAIN_SECONDS} s after the load): {stuck}")
    server_errors = sum(n for s, n in stats.status.items() if s.startswith("5") and s != "503")
    failures = server_errors + stats.status["timeout"] + stats.status["connection_error"] + len(lost) + stuck
    print("targets: " + ("met" if not failures else f"missed ({failures} failures)"))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
