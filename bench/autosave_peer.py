"""The autosave's peer: a seed-style Express + PostgreSQL service (bench/peer/), measured beside the engine.

The peer is what a team would write first: one Node process, Express's JSON body parser, a `pg` pool
and one conditional UPDATE ... RETURNING per save, no sandbox, no history, no log line, no metrics.
It is installed from npm (`npm ci` into bench/peer/node_modules) and runs over a private PostgreSQL
(tests/support/postgres.py's throwaway server: initdb in a temp directory, never the system service). When
node, npm, the packages or PostgreSQL are not there, the bench says so and skips the peer.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from .server import HOST, cpu_seconds_of, free_port

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = Path(__file__).resolve().parent / "peer"
INSTALL_SECONDS = 300
START_SECONDS = 30


@dataclass
class Peer:
    """The peer's Node process and the PostgreSQL under it, with the CPU both have used."""

    process: subprocess.Popen
    port: int
    database: object
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _processes(self) -> list[psutil.Process]:
        found = []
        try:
            found.append(psutil.Process(self.process.pid))
        except psutil.NoSuchProcess:
            pass
        postmaster = _postmaster_pid(self.database)
        if postmaster:
            try:
                main = psutil.Process(postmaster)
                found += [main, *main.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return found

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of node and every PostgreSQL process so far."""
        return cpu_seconds_of(self._processes())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.database.stop()  # type: ignore[attr-defined]


def _postmaster_pid(database: object) -> int | None:
    try:
        return int((Path(database.data) / "postmaster.pid").read_text().split()[0])  # type: ignore[attr-defined]
    except (OSError, ValueError, IndexError):
        return None


def unavailable(install: bool) -> str | None:
    """Why the peer cannot run here (None when it can), installing its packages first if install."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return "node and npm are not installed (Debian packages nodejs, npm)"
    if not any(Path("/usr/lib/postgresql").glob("*/bin/initdb")) and not shutil.which("initdb"):
        return "PostgreSQL is not installed (Debian package postgresql)"
    if not (PEER_DIR / "node_modules" / "express").is_dir() or not (PEER_DIR / "node_modules" / "pg").is_dir():
        if not install:
            return "the peer's npm packages are not installed (a full bench run installs them: npm ci in bench/peer)"
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEER_DIR, capture_output=True, text=True,
                timeout=INSTALL_SECONDS,
            )
        except subprocess.TimeoutExpired:
            return f"npm ci did not finish in {INSTALL_SECONDS} s"
        if done.returncode != 0:
            return f"npm ci failed: {done.stderr.strip()[-300:]}"
    return None


def start(workdir: Path) -> Peer:
    """A private PostgreSQL and the peer over it, answering on a free loopback port."""
    sys.path.insert(0, str(ROOT / "tests"))
    from support.postgres import PostgresServer  # noqa: PLC0415 (the tests' private server)

    database = PostgresServer().start()
    port = free_port()
    log_path = workdir / "peer.log"
    url = database.url().replace("postgresql+psycopg://", "postgresql://")
    env = {**os.environ, "PORT": str(port), "HOST": HOST, "DATABASE_URL": url, "NODE_ENV": "production"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [shutil.which("node") or "node", "server.js"], cwd=PEER_DIR, env=env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    peer = Peer(process, port, database, log_path)
    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-1000:]
            peer.stop()
            raise RuntimeError(f"the peer did not start: {tail}")
        try:
            with urllib.request.urlopen(peer.url + "/health", timeout=2) as rv:
                if rv.status == 200:
                    return peer
        except OSError:
            time.sleep(0.1)
