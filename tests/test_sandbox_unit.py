"""Hostile programs through Sandbox.run() directly, in worker slots held the way the runner holds them."""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import psutil
import pytest

from app.config import Config
from app import create_app
from app.sandbox import BY_NAME, Limits, Sandbox, Settings
from app.slots import SlotPool, check_ranges

MiB = 1024 * 1024
LIMITS = Limits(
    timeout_seconds=2.0, cpu_seconds=2, memory_bytes=64 * MiB, processes=32,
    output_bytes=16 * 1024, file_size_bytes=8 * MiB, disk_bytes=16 * MiB,
)
PYTHON = BY_NAME["python"]
SLOT_WAIT_SECONDS = 60


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sandbox = Sandbox()
    yield sandbox
    # its fork servers and warm sandboxes, if it started any, go with the test
    sandbox.close()


@pytest.fixture
def hold():
    """hold(wanted=None): a machine-wide slot (one of wanted), used by no other engine until the test ends."""
    pool = SlotPool(Config.SLOT_LOCK_DIR, Config.RUN_SLOTS)
    held: list[int] = []

    def take(wanted: set[int] | None = None) -> int:
        held.append(_acquire(pool, wanted))
        return held[-1]

    yield take
    for index in held:
        pool.release(index)


def _acquire(pool: SlotPool, wanted: set[int] | None) -> int:
    """A slot of wanted (any when None), waiting for a running engine to free one."""
    deadline = time.monotonic() + SLOT_WAIT_SECONDS
    spare: list[int] = []
    while time.monotonic() < deadline:
        slot = pool.acquire()
        if slot is not None and (wanted is None or slot in wanted):
            for index in spare:
                pool.release(index)
            return slot
        if slot is not None:
            spare.append(slot)
        else:
            for index in spare:
                pool.release(index)
            spare.clear()
            # engines grab a freed slot at once: look often
            time.sleep(0.005)
    raise AssertionError(f"no slot of {wanted or 'any'} came free within {SLOT_WAIT_SECONDS} s")


def processes_of(uid: int) -> list[psutil.Process]:
    """Live processes of uid (a zombie is already dead: only its parent can reap it)."""
    return [
        p for p in psutil.process_iter(["uids", "status"])
        if p.info["uids"] and p.info["uids"].real == uid and p.info["status"] != psutil.STATUS_ZOMBIE
    ]


def wait_until_none(uid: int, seconds: float) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while (left := processes_of(uid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


DAEMON = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        while True:
            time.sleep(0.05)
    os._exit(0)
os.wait()
time.sleep(0.2)
print(sum(1 for p in os.listdir("/proc") if p.isdigit()))
"""


def test_a_setsid_daemon_leaves_no_process_of_the_slots_uid(hold):
    # a cold start's slot is empty after its run; a fork server's keeps the server (tests/test_fork_server.py)
    sandbox = Sandbox(Settings(fork_server=False))
    slot = hold()
    uid = sandbox.slot_user(slot)

    result = sandbox.run(PYTHON, DAEMON.encode(), b"", LIMITS, slot)

    assert result.reason is None, result
    # bwrap's init, the program and its daemon
    assert int(result.stdout) >= 3
    assert wait_until_none(uid, 3.0) == []
    assert sandbox.slot_group(slot).pids() == []


def test_a_sleeper_that_times_out_leaves_its_slot_empty(hold):
    # a cold start's slot is empty after its run; a fork server's keeps the server (tests/test_fork_server.py)
    sandbox = Sandbox(Settings(fork_server=False))
    slot = hold()
    uid = sandbox.slot_user(slot)
    source = b"import os, time\nos.fork()\nos.fork()\nwhile True:\n    time.sleep(1000)\n"

    result = sandbox.run(PYTHON, source, b"", LIMITS, slot)

    assert result.reason == "timeout", result
    assert wait_until_none(uid, 3.0) == []
    assert sandbox.slot_group(slot).pids() == []


MARK_AND_WAIT = """
import json, os, sys, time
token = sys.stdin.read()
for directory in ("/box", "/tmp", "/dev/shm"):
    open(f"{directory}/mine-{token}", "w").write("private")
time.sleep(1.2)
print(json.dumps([d for d in ("/box", "/tmp", "/dev/shm") if os.path.exists(f"{d}/mine-{token}")]))
"""

SEARCH = """
import json, os, sys, time
token = sys.stdin.read()
time.sleep(0.4)
found = []
for top in ("/", "/box", "/tmp", "/dev/shm", "/etc"):
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/usr", "/sys")]
        found += [os.path.join(root, f) for f in files if token in f]
for pid in filter(str.isdigit, os.listdir("/proc")):
    for directory in ("box", "tmp"):
        try:
            found += [f"/proc/{pid}/root/{directory}/{f}" for f in os.listdir(f"/proc/{pid}/root/{directory}") if token in f]
        except OSError:
            pass
print(json.dumps(found))
"""


def test_a_run_cannot_see_the_files_of_a_run_beside_it(sandbox, hold):
    first, second = hold(), hold()
    token = uuid.uuid4().hex
    results = {}
    windows = {}

    def run(name: str, slot: int, source: str) -> None:
        started = time.monotonic()
        results[name] = sandbox.run(PYTHON, source.encode(), token.encode(), LIMITS, slot)
        windows[name] = (started, time.monotonic())

    owner = threading.Thread(target=run, args=("owner", first, MARK_AND_WAIT))
    owner.start()
    run("snoop", second, SEARCH)
    owner.join()

    assert results["owner"].reason is None, results["owner"]
    assert json.loads(results["owner"].stdout) == ["/box", "/tmp", "/dev/shm"]
    assert results["snoop"].reason is None, results["snoop"]
    assert json.loads(results["snoop"].stdout) == []
    # the two runs really overlapped
    assert windows["snoop"][0] < windows["owner"][1] and windows["owner"][0] < windows["snoop"][1]


FORK_LATER = """
import os, time
time.sleep(1.0)
children = 0
for _ in range(24):
    try:
        if os.fork() == 0:
            time.sleep(0.5)
            os._exit(0)
        children += 1
    except OSError:
        pass
print(children)
"""


def test_an_engine_starting_does_not_change_the_limits_of_a_run_under_way(hold):
    # Cgroups.detect() probes slot 0, so the run must be in slot 0 to see whether that probe respects it;
    # a cold start: a fork server's own processes (server, run init) would share the run's pids cap
    running = Sandbox(Settings(fork_server=False))
    slot = hold({0})
    limits = Limits(timeout_seconds=5.0, cpu_seconds=5, processes=64, memory_bytes=128 * MiB)
    result = {}
    worker = threading.Thread(target=lambda: result.update(run=running.run(PYTHON, FORK_LATER.encode(), b"", limits, slot)))
    worker.start()
    uid = running.slot_user(slot)
    deadline = time.monotonic() + 5
    while not processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert processes_of(uid), "the run never started"

    # what a second engine process (another gunicorn worker) does when it boots
    Sandbox()
    worker.join()

    assert result["run"].reason is None, result["run"]
    assert int(result["run"].stdout) == 24, "the run lost the process limit it was started with"


def test_back_to_back_runs_in_one_slot_each_get_the_whole_process_limit(sandbox, hold):
    slot = hold()
    limits = Limits(timeout_seconds=2.0, cpu_seconds=2, processes=8)

    results = [sandbox.run(PYTHON, b'print("ok")', b"", limits, slot) for _ in range(8)]

    assert [r.reason for r in results] == [None] * 8, [r.stderr for r in results if r.reason]


def test_slot_counts_that_would_share_slots_between_pools_are_refused_at_start(config):
    # each pool's slots own uids and cgroups: an overlap would let one pool's clearing kill another's runs
    check_ranges(2, 8, 16, 2)
    for field, count in (("RUN_SLOTS", 501), ("INTERACTIVE_RUN_SLOTS", 501), ("WARM_SLOTS", 1001), ("DIAGNOSTICS_SLOTS", 49)):
        with pytest.raises(ValueError, match=field):
            create_app({**config, field: count, "RUNNER_ENABLED": False})


def test_a_run_slot_another_process_just_released_is_left_to_it(tmp_path):
    # its fork server is there: taking the slot would end it (the servers of two processes churned)
    import subprocess
    import sys

    other = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time; from app.slots import SlotPool\n"
            f"pool = SlotPool({str(tmp_path)!r}, 2, keep_seconds=0.5)\n"
            "pool.release(pool.acquire()); print('released', flush=True); time.sleep(30)"
        )],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert other.stdout.readline() == "released\n"
        pool = SlotPool(tmp_path, 2, keep_seconds=0.5)
        first = pool.acquire()
        second = pool.acquire()
        time.sleep(0.6)
        third = pool.acquire()
    finally:
        other.kill()
        other.wait()
        other.stdout.close()

    # slot 0 is the other process's for a while, then anyone's; slots this process used come first for it
    assert (first, second, third) == (1, None, 0)
    pool.release(1)
    pool.release(0)
    assert pool.acquire() == 0
    pool.close()
