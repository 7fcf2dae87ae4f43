"""A real PostgreSQL server for the tests: initdb into a temp directory, pg_ctl start on a free 127.0.0.1 port, no system service.

Root may not run postgres, so as root the server runs as the `postgres` OS user (runuser) in a
directory it owns. `postgres_server` is one server per test session; each test that asks for
`any_database` (SQLite and PostgreSQL, parametrized) or `postgres_database` gets a fresh database.
"""
from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.servers import free_port

START_SECONDS = 30
STOP_SECONDS = 20


def bin_dir() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(re.search(r"/(\d+)/bin/", path).group(1)) if re.search(r"/(\d+)/bin/", path) else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    pytest.fail("PostgreSQL is not installed (make system-deps installs the Debian package postgresql)")


class PostgresServer:
    """One postgres process over a throwaway data directory."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="engine-postgres-"))
        self.data = self.root / "data"
        self.port = 0
        # root may not run postgres: run it as the postgres OS user, in a directory that user owns
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.root, 0o700)

    def _run(self, *argv: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.as_user, *argv], capture_output=True, text=True, timeout=timeout, cwd=self.root
        )

    def start(self) -> PostgresServer:
        done = self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync", timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        for _ in range(3):
            # another test run may take the port between free_port() and the bind: try another
            self.port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
                # a throwaway server: durability buys nothing, speed does
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
            )
            done = self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                "-o", options, "-w", "-t", str(START_SECONDS), "start", timeout=START_SECONDS + 10,
            )
            if done.returncode == 0:
                return self
        raise AssertionError(f"postgres did not start: {done.stdout}{done.stderr}\n{self.log()}")

    def log(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres"):  # noqa: ANN201 (psycopg.Connection)
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True, connect_timeout=10)

    def new_database(self) -> str:
        """A fresh empty database; its SQLAlchemy URL."""
        name = f"engine_{uuid.uuid4().hex[:12]}"
        with self.connect() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        done = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", str(STOP_SECONDS), "stop", timeout=STOP_SECONDS + 10)
        if done.returncode != 0:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "-t", "10", "stop", timeout=20)
        shutil.rmtree(self.root, ignore_errors=True)


def query(url: str, sql: str, *args: object) -> list[dict]:
    """Rows straight from a PostgreSQL database (its own connection, as another process sees them)."""
    import psycopg
    from psycopg.rows import dict_row

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, row_factory=dict_row, connect_timeout=10) as connection:
        return connection.execute(sql, args).fetchall()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test session, stopped (bounded) at the end."""
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> str:
    """The SQLAlchemy URL of a fresh database on the test PostgreSQL server."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request, tmp_path) -> str:
    """The URL of a fresh database: a SQLite file, then (a second run of the test) a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'engine.db'}"
    return request.getfixturevalue("postgres_server").new_database()

