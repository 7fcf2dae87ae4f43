"""Hostile programs against the process limits: fork and thread bombs, daemons, busy loops and sleepers.

Every test runs twice (tests/support/hostile.py's config): with runs forked from a fork server and cold."""
from __future__ import annotations

import time
import uuid

import psutil
import pytest
from support.client import wait_terminal
from support.hostile import (  # noqa: F401 (config is a fixture)
    HOSTILE_LIMITS,
    assert_all_gone,
    assert_engine_serves,
    config,
    host_processes_with,
    run_processes,
    submit,
    wait_for,
)

FORK_BOMB = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""


THREAD_BOMB = """
import threading, time
while True:
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
"""


def test_a_fork_bomb_is_capped_and_the_host_stays_responsive(client):
    execution_id = submit(client, FORK_BOMB)
    seen: dict[int, psutil.Process] = {}
    most = 0

    def bomb_grown() -> bool:
        nonlocal most
        processes = run_processes()
        seen.update({p.pid: p for p in processes})
        most = max(most, len(processes))
        return most >= HOSTILE_LIMITS["RUN_PROCESSES"] // 2

    wait_for(bomb_grown, 10, "the fork bomb growing")
    started = time.monotonic()
    while time.monotonic() - started < 0.5:
        bomb_grown()
    done = wait_terminal(client, execution_id)

    assert done["status"] in {"FAILED", "TIMEOUT"}, done
    assert most <= HOSTILE_LIMITS["RUN_PROCESSES"]
    assert_all_gone(list(seen.values()))
    assert_engine_serves(client)


def test_a_thread_bomb_is_capped_and_reported_as_such(client):
    execution_id = submit(client, THREAD_BOMB)
    done = wait_terminal(client, execution_id)

    assert done["status"] in {"FAILED", "TIMEOUT"}, done
    if done["status"] == "FAILED":
        assert done["error"] == "process_limit", done
    assert_engine_serves(client)


DAEMON = """
import os, sys, time
token, keep_stdio = sys.stdin.read().split()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        if keep_stdio == "no":
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
        os.execv("/usr/bin/python3", ["python3", "-c", "import time\\nwhile True: time.sleep(0.05)", token])
    os._exit(0)
os.wait()
deadline = time.monotonic() + 1.0
while time.monotonic() < deadline:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token.encode() in open(f"/proc/{pid}/cmdline", "rb").read():
                print("daemon up", flush=True)
                sys.exit(0)
        except OSError:
            pass
    time.sleep(0.01)
print("daemon never started")
sys.exit(3)
"""


@pytest.mark.parametrize("keep_stdio", ["no", "yes"])
def test_a_daemon_does_not_outlive_its_run(app, client, keep_stdio):
    token = f"daemon-{uuid.uuid4().hex}"

    done = wait_terminal(client, submit(client, DAEMON, f"{token} {keep_stdio}"))

    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == "daemon up\n"
    assert done["execution_time_ms"] < HOSTILE_LIMITS["RUN_TIMEOUT_SECONDS"] * 1000
    deadline = time.monotonic() + 3
    while (host_processes_with(token) or run_processes()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert host_processes_with(token) == []
    assert run_processes() == []
    assert_engine_serves(client)


# ---------------------------------------------------------------- memory


def test_a_busy_loop_times_out(client, run_code):
    started = time.monotonic()

    done = run_code("while True:\n    pass\n")

    assert done["status"] == "TIMEOUT", done
    assert time.monotonic() - started < HOSTILE_LIMITS["RUN_TIMEOUT_SECONDS"] + 5
    assert_engine_serves(client)


def test_a_sleeper_times_out_and_leaves_no_process(client):
    execution_id = submit(client, "import time\nwhile True:\n    time.sleep(1000)\n")
    processes = wait_for(run_processes, 10, "the sleeper's processes")

    done = wait_terminal(client, execution_id)

    assert done["status"] == "TIMEOUT", done
    assert_all_gone(processes)
    assert_engine_serves(client)
