"""Real gunicorn servers: start, kill -9, SIGTERM, restart over the same database; the live_server fixture and gunicorn()."""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
TERMINAL = {"COMPLETED", "FAILED", "TIMEOUT"}
START_SECONDS = 60
STOP_SECONDS = 45


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """`gunicorn -c app/gunicorn_conf.py wsgi:app` on a free 127.0.0.1 port over the SQLite file `database`
    (or a database URL); env adds plain environment variables (ENGINE_INSTANCE_PATH)."""

    def __init__(
        self, database: Path | str, log: Path, workers: int = 1, env: dict[str, str] | None = None, **settings: object
    ) -> None:
        self.database = database
        self.log_path = log
        self.workers = workers
        self.env = env or {}
        self.settings = settings
        self.port = 0
        self.process: subprocess.Popen | None = None

    def start(self) -> LiveServer:
        self.port = free_port()
        env = dict(
            os.environ,
            HOST="127.0.0.1",
            PORT=str(self.port),
            WEB_WORKERS=str(self.workers),
            ENGINE_SQLALCHEMY_DATABASE_URI=self.database if isinstance(self.database, str) else f"sqlite:///{self.database}",
            **{f"ENGINE_{name}": json.dumps(value) for name, value in self.settings.items()},
            **self.env,
        )
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(ROOT / ".venv/bin/gunicorn"), "-c", "app/gunicorn_conf.py", "wsgi:app"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                status, _, _ = self.call("GET", "/health", timeout=5)
                if status == 200 and len(self.worker_pids()) >= self.workers:
                    return self
            except OSError:
                pass
            assert time.monotonic() < deadline, f"gunicorn not serving after {START_SECONDS} s:\n{self.log_path.read_text()}"
            time.sleep(0.2)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def worker_pids(self) -> list[int]:
        try:
            return [child.pid for child in psutil.Process(self.process.pid).children() if "gunicorn" in " ".join(child.cmdline())]
        except psutil.Error:
            return []

    def kill9(self) -> None:
        """SIGKILL the master and every process under it at once: a crash, nothing runs any cleanup."""
        try:
            everyone = [psutil.Process(self.process.pid)] + psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            everyone = []
        for process in everyone:
            try:
                process.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        self.process.wait(10)
        psutil.wait_procs(everyone, timeout=10)

    def terminate(self) -> None:
        """SIGTERM the master: gunicorn's graceful stop."""
        self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, seconds: float = STOP_SECONDS) -> int:
        return self.process.wait(seconds)

    def stop(self) -> None:
        if not self.running:
            return
        self.terminate()
        try:
            self.wait_stopped()
        except subprocess.TimeoutExpired:
            self.kill9()

    def call(
        self, method: str, path: str, body: object = None, headers: dict | None = None, timeout: float = 40
    ) -> tuple[int, object, dict[str, str]]:
        """One request on a fresh connection: (status, JSON body or None, headers). Raises OSError if refused."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            connection.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
            response = connection.getresponse()
            raw = response.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            return response.status, parsed, dict(response.getheaders())
        finally:
            connection.close()

    def wait_terminal(self, execution_id: str, seconds: float = 60) -> dict:
        return self.poll_terminal(execution_id, seconds)[0]

    def poll_terminal(self, execution_id: str, seconds: float = 60, wait: int = 10) -> tuple[dict, float]:
        """Long-poll until the execution is terminal: its body, and the wall-clock time that answer came."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            status, body, _ = self.call("GET", f"/executions/{execution_id}?wait={wait}")
            answered = time.time()
            assert status == 200, body
            if body["status"] in TERMINAL:
                return body, answered
        raise AssertionError(f"execution {execution_id} not terminal after {seconds} s")


def query(database: Path, sql: str, *args: object) -> list[sqlite3.Row]:
    """Rows straight from the engine's SQLite file (a separate connection, as another process sees them)."""
    connection = sqlite3.connect(database, timeout=30)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(sql, args).fetchall()
    finally:
        connection.close()


@pytest.fixture
def live_server(tmp_path) -> Iterator[Callable[..., LiveServer]]:
    """Factory: live_server(workers=1, database=None, **ENGINE_settings) starts a real gunicorn; all stop at the end."""
    started: list[LiveServer] = []

    def start(workers: int = 1, database: Path | None = None, **settings: object) -> LiveServer:
        server = LiveServer(database or tmp_path / "e.db", tmp_path / "gunicorn.log", workers, **settings)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


class Server(NamedTuple):
    url: str
    pid: int  # gunicorn's master; its one worker is its child


@contextmanager
def gunicorn(tmp_path: Path, **settings: object) -> Iterator[Server]:
    """Serve the engine with gunicorn until the block ends, then SIGTERM it. settings become ENGINE_<NAME>."""
    server = LiveServer(tmp_path / "e.db", tmp_path / "gunicorn.log", **settings).start()
    try:
        yield Server(f"http://127.0.0.1:{server.port}", server.process.pid)
    finally:
        server.stop()
