"""Start and stop servers the way a user does: gunicorn with app/gunicorn_conf.py, on loopback."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# generous enough for any per-client rate limit the engine may grow; the bench must not be throttled
UNTHROTTLED = 1_000_000
# sandbox uids of a bench engine with private slots: clear of the default range (61000 + slot)
# and of the test suite's (100000 + ...). Two benches at once (another worktree's) must not share
# uids or cgroups either: each clearing "its" slot would kill the other's runs. So each bench takes
# one of PRIVATE_BUCKETS buckets by process id, each wide enough for the run slots and the warm
# ones (slot 1000 and up, app/__init__.py)
PRIVATE_UID_BASE = 1_000_000
PRIVATE_BUCKETS = 200
PRIVATE_BUCKET_WIDTH = 2048
# and a cgroup tree of its own, removed when the bench ends (remove_private_cgroups)
PRIVATE_CGROUP = f"live-code-engine-bench-{os.getpid()}"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def gunicorn_path() -> str:
    beside = Path(sys.executable).parent / "gunicorn"
    return str(beside if beside.exists() else ROOT / ".venv" / "bin" / "gunicorn")


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def processes(self) -> list[psutil.Process]:
        """The gunicorn master and its workers (not the runs the workers spawn)."""
        try:
            master = psutil.Process(self.process.pid)
            return [master, *master.children(recursive=False)]
        except psutil.NoSuchProcess:
            return []

    def rss_bytes(self) -> dict[str, int]:
        """Resident memory of the master, of the workers, and (apart) of the runs and sandboxes they spawned."""
        rss = {"master": 0, "workers": 0, "runs": 0}
        processes = self.processes()
        try:
            spawned = [p for worker in processes[1:] for p in worker.children(recursive=True)]
        except psutil.NoSuchProcess:
            spawned = []
        for kind, group in (("master", processes[:1]), ("workers", processes[1:]), ("runs", spawned)):
            for proc in group:
                try:
                    rss[kind] += proc.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
        rss["total"] = rss["master"] + rss["workers"]
        return rss

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the master and workers have used so far, runs excluded."""
        return cpu_seconds_of(self.processes())

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 45.0) -> int | None:
        """SIGTERM the master and wait; SIGKILL its process group if it outstays timeout."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        return self.process.returncode


def cpu_seconds_of(processes: list[psutil.Process]) -> float:
    """CPU time (user + system) these processes have used so far; one that has gone counts nothing."""
    total = 0.0
    for proc in processes:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def start(name: str, target: str, workdir: Path, env: dict[str, str], health_path: str = "/health", timeout: float = 60.0) -> Server:
    """Start `gunicorn -c app/gunicorn_conf.py target` on a free loopback port and wait until health_path answers 200."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    full_env = {**os.environ, **env, "HOST": HOST, "PORT": str(port)}
    full_env.pop("WEB_ACCESS_LOG", None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [gunicorn_path(), "-c", "app/gunicorn_conf.py", target],
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # its own process group, so a hung server can be killed with everything it spawned
            start_new_session=True,
        )
    server = Server(name, process, port, log_path)
    try:
        wait_healthy(server, health_path, timeout)
    except BaseException:
        server.stop(10)
        raise
    return server


def wait_healthy(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + path, timeout=2) as rv:
                if rv.status == 200:
                    return
        except urllib.error.HTTPError as error:
            last = f"{error.code} {error.read()[:300]!r}"
        except OSError as error:
            last = str(error)
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not healthy after {timeout} s ({last}):\n{server.log_tail()}")


def unthrottled_settings() -> dict[str, str]:
    """ENGINE_* overrides that lift any rate limit the engine's Config declares."""
    try:
        from app.config import Config
    except Exception:  # noqa: BLE001 (an engine mid-edit must not stop the bench)
        return {}
    overrides: dict[str, str] = {}
    for name in dir(Config):
        upper = name.upper()
        words = set(upper.split("_"))
        limiting = words & {"RATE", "RATELIMIT", "THROTTLE"} or any(f"PER_{unit}" in upper for unit in ("SECOND", "MINUTE", "HOUR"))
        # a longer window or retry delay would throttle more, not less
        if name.startswith("_") or not limiting or words & {"WINDOW", "PERIOD", "SECONDS", "INTERVAL", "RETRY"}:
            continue
        value = getattr(Config, name)
        if isinstance(value, bool):
            if "ENABLED" in words:
                overrides[f"ENGINE_{name}"] = "false"
        elif isinstance(value, (int, float)):
            overrides[f"ENGINE_{name}"] = json.dumps(UNTHROTTLED)
        elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*/.*", value):
            # "60/minute" style
            overrides[f"ENGINE_{name}"] = re.sub(r"\d+", str(UNTHROTTLED), value, count=1)
    return overrides


def private_slot_settings(workdir: Path) -> dict[str, str]:
    """ENGINE_* overrides giving the bench engine run slots of its own.

    Slots are machine-wide by default: on a shared host other engines (test suites) hold them and
    the bench would measure their runs. Own lock files, uids and cgroup keep the two apart.
    """
    bucket = os.getpid() % PRIVATE_BUCKETS
    return {
        "ENGINE_SLOT_LOCK_DIR": json.dumps(str(workdir / "slots")),
        "ENGINE_SANDBOX_UID_BASE": json.dumps(PRIVATE_UID_BASE + bucket * PRIVATE_BUCKET_WIDTH),
        "ENGINE_SANDBOX_CGROUP_NAME": json.dumps(PRIVATE_CGROUP),
    }


def remove_private_cgroups(timeout: float = 5.0) -> None:
    """Remove this bench's cgroup tree (every controller's, v1 or v2) once its engine has stopped.

    Deepest first; a cgroup whose last sandbox is still exiting is busy for a moment, so this
    tries again until timeout, and leaves what is still in use then."""
    deadline = time.monotonic() + timeout
    while True:
        trees = [tree for tree in [*CGROUP_ROOT.glob(f"*/{PRIVATE_CGROUP}"), CGROUP_ROOT / PRIVATE_CGROUP] if tree.is_dir()]
        for tree in trees:
            for directory in sorted((p for p in tree.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    directory.rmdir()
            with contextlib.suppress(OSError):
                tree.rmdir()
        if not any(tree.is_dir() for tree in trees) or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def engine_settings(workdir: Path, private_slots: bool) -> dict[str, str]:
    """The environment the bench adds to a user's: its own database, no rate limit, maybe own slots."""
    env = {"ENGINE_SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'bench.db'}", **unthrottled_settings()}
    return {**env, **private_slot_settings(workdir)} if private_slots else env


def start_engine(workdir: Path, private_slots: bool = True) -> Server:
    return start("engine", "wsgi:app", workdir, engine_settings(workdir, private_slots))


def start_floor_app(workdir: Path) -> Server:
    return start("floor-app", "bench.floor_app:app", workdir, {}, health_path="/")
