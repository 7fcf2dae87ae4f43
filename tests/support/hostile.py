"""What the hostile tests (tests/test_hostile_*.py) share: programs through the whole engine (HTTP, runner, sandbox),
each of which must be contained while the engine lives; their small limits, the config fixture that runs
every test with a fork server and cold, and probes of the host's processes and network."""
from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import psutil
import pytest

from support.client import wait_terminal

MiB = 1024 * 1024
CANARY_NAME = "ENGINE_CANARY_SECRET"
CANARY_VALUE = f"canary-{uuid.uuid4().hex}"
# small limits: every bomb below runs inside these, never outside the sandbox
HOSTILE_LIMITS = {
    "RUN_TIMEOUT_SECONDS": 2.0,
    "RUN_CPU_SECONDS": 2,
    "RUN_PROCESSES": 32,
    "RUN_MEMORY_BYTES": 64 * MiB,
    "OUTPUT_LIMIT_BYTES": 16 * 1024,
    "RUN_FILE_SIZE_BYTES": 8 * MiB,
    "RUN_DISK_BYTES": 16 * MiB,
    "RUN_WORKERS": 2,
    "ONE_SHOT_RUNS_PER_MINUTE_PER_IP": 0,
    # no warm sandboxes (tests/test_warm_pool.py sends the same bombs through them); every test
    # runs twice, with runs forked from a fork server and with cold starts
    "WARM_POOL": {},
}
# a fork server's prepared run (forkserver_program.py names them): no run's processes yet
PREPARED_NAMES = {"run-init", "run-ready"}
# what the program may see of an environment: the sandbox's own minimal one
PROGRAM_ENV_KEYS = {"PATH", "HOME", "LANG", "LC_CTYPE", "PWD", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}


@pytest.fixture(params=["fork_server", "cold"])
def config(config, monkeypatch, request):
    """Hostile limits, and a secret in the server's environment before the app exists."""
    monkeypatch.setenv(CANARY_NAME, CANARY_VALUE)
    return {**config, **HOSTILE_LIMITS, "FORK_SERVER": request.param == "fork_server"}


def submit(client, source: str, stdin: str = "") -> str:
    rv = client.post("/executions", json={"language": "python", "source_code": source, "stdin": stdin})
    assert rv.status_code == 202, rv.json
    return rv.json["execution_id"]


def assert_engine_serves(client) -> None:
    """The engine is healthy and still runs an ordinary program to completion."""
    rv = client.get("/health")
    assert rv.status_code == 200, rv.json
    done = wait_terminal(client, submit(client, 'print("hello")'), 20)
    assert done["status"] == "COMPLETED", f"the engine no longer runs hello world: {done}"
    assert done["stdout"] == "hello\n"


def wait_for(probe, seconds: float, what: str):
    """probe()'s first truthy value, polling against a deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} not seen within {seconds} s")


def slot_uids(app) -> range:
    base = int(app.config["SANDBOX_UID_BASE"])
    return range(base, base + int(app.config["RUN_SLOTS"]))


def run_processes() -> list[psutil.Process]:
    """This engine's sandboxed descendants (bubblewrap and the program), as the host sees them."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = child.cmdline()
        except psutil.Error:
            continue
        # a fork server's own sandbox (it keeps capabilities to give each run its namespaces) is no run's
        if cmdline and cmdline[0].endswith("bwrap") and "--cap-add" not in cmdline or cmdline[-1:] == ["main.py"]:
            found.append(child)
        elif forked_run_depth(child) is not None:
            found.append(child)
    return found


def forked_run_depth(process: psutil.Process) -> int | None:
    """The pid a process forked by a fork server has inside its run's namespace (a run's processes
    are three PID namespaces deep: the host's, the server's sandbox's, the run's), else None."""
    try:
        if process.name() in PREPARED_NAMES:
            return None
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                pids = line.split()[1:]
                return int(pids[-1]) if len(pids) >= 3 else None
    except (psutil.Error, OSError):
        return None
    return None


def program_processes() -> list[psutil.Process]:
    out = []
    for process in run_processes():
        try:
            if process.cmdline()[-1] == "main.py" or (forked_run_depth(process) or 0) > 1:
                out.append(process)
        except psutil.Error:
            pass
    return out


def assert_all_gone(processes: list[psutil.Process], seconds: float = 5.0) -> None:
    _, alive = psutil.wait_procs(processes, timeout=seconds)
    assert alive == [], f"run processes outlived their run: {alive}"


def host_processes_with(token: str) -> list[tuple[int, int, list[str]]]:
    found = []
    for process in psutil.process_iter(["pid", "uids", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if any(token in part for part in cmdline):
            found.append((process.info["pid"], process.info["uids"].real, cmdline))
    return found


def listening_in_netns(pid: int, port: int) -> bool:
    """True when process pid's network namespace has a TCP socket listening on port."""
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
            return True
    return False


def host_ipv4_addresses() -> list[str]:
    return [
        address.address
        for addresses in psutil.net_if_addrs().values()
        for address in addresses
        if address.family == socket.AF_INET
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------- limits actually in force
