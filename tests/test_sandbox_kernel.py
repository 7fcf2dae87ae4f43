"""Hostile programs against the kernel's surface, the CPU and the compile cache, through the whole engine.

Each test closes a gap that an attacker found through the public API (issue 12): the syscall filter,
the file-lock channel between runs, the CPU held per run, and the compile cache's bound.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from app import create_app
from app.sandbox import BY_NAME, Limits, Sandbox
from app.sandbox.cgroups import Cgroups
from app.sandbox.compile_cache import CompileCache
from app.sandbox.isolation import Step
from app.sandbox.syscall_filter import build_filter
from support.client import wait_terminal

MiB = 1024 * 1024
KERNEL_LIMITS = {
    "RUN_TIMEOUT_SECONDS": 5.0,
    "RUN_CPU_SECONDS": 3,
    "RUN_PROCESSES": 64,
    "RUN_MEMORY_BYTES": 128 * MiB,
    "RUN_WORKERS": 2,
    # cold starts: the warm path is checked by its own test below
    "WARM_POOL": {},
}
SIGSYS_EXIT = 128 + 31

# a Python program's view of one raw syscall: "ok" or the errno's name
SYSCALL_PROBE = """
import ctypes, errno, json, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(number, *args):
    result = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])
    return "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]
"""


@pytest.fixture
def config(config):
    """Kernel-test limits and a compile cache of the test's own (where the slot uids can reach it:
    pytest's tmp_path is private to root)."""
    cache_dir = tempfile.mkdtemp(prefix="engine-test-cache-")
    os.chmod(cache_dir, 0o711)
    yield {**config, **KERNEL_LIMITS, "COMPILE_CACHE_DIR": cache_dir}
    shutil.rmtree(cache_dir, ignore_errors=True)


def submit(client, source: str, language: str = "python") -> str:
    rv = client.post("/executions", json={"language": language, "source_code": source})
    assert rv.status_code == 202, rv.json
    return rv.json["execution_id"]


def probe(run_code, calls: dict[str, str]) -> dict[str, str]:
    """Each named call's outcome inside a run ("ok" or an errno name)."""
    lines = [f"out[{name!r}] = {expression}" for name, expression in calls.items()]
    done = run_code(SYSCALL_PROBE + "out = {}\n" + "\n".join(lines) + "\nprint(json.dumps(out))\n")
    assert done["status"] == "COMPLETED", done
    return json.loads(done["stdout"])


def test_every_run_is_under_the_syscall_filter_and_health_says_so(client, run_code):
    done = run_code('print(open("/proc/self/status").read().split("Seccomp:")[1].split()[0])')

    assert done["status"] == "COMPLETED", done
    # 2: a seccomp filter is in force (0 would be none)
    assert done["stdout"] == "2\n"
    assert client.get("/health").json["isolation"]["syscall_filter"] == "seccomp"
    assert client.get("/languages").json["isolation"]["syscall_filter"] == "seccomp"


def test_a_forked_run_is_under_the_syscall_filter_too(config):
    # a fork server's sandbox is started without it: each run loads it itself, after its setup
    app = create_app({**config, "FORK_SERVER": True})
    try:
        client = app.test_client()
        done = wait_terminal(client, submit(client, 'print(open("/proc/self/status").read().split("Seccomp:")[1].split()[0])'))
        assert done["status"] == "COMPLETED", done
        assert done["stdout"] == "2\n"
        assert app.extensions["engine"].sandbox.describe()["start_paths"]["python"] == "fork_server"
        assert app.extensions["engine"].sandbox.fork_server_starts >= 1
    finally:
        app.extensions["engine"].runner.shutdown()


def test_a_warm_run_is_under_the_syscall_filter_too(config):
    app = create_app({**config, "WARM_POOL": {"python": 1}, "FORK_SERVER": False})
    try:
        client = app.test_client()
        deadline = time.monotonic() + 30
        while app.extensions["engine"].sandbox.warm_pool.describe()["ready"]["python"] < 1:
            assert time.monotonic() < deadline, "no warm python sandbox was started"
            time.sleep(0.05)
        done = wait_terminal(client, submit(client, 'print(open("/proc/self/status").read().split("Seccomp:")[1].split()[0])'))
        assert done["status"] == "COMPLETED", done
        assert done["stdout"] == "2\n"
        assert app.extensions["engine"].sandbox.warm_pool.hits >= 1
    finally:
        app.extensions["engine"].runner.shutdown()


def test_every_start_path_through_bubblewrap_hands_it_the_filter(tmp_path):
    # compile steps, cold runs and warm starts all go through Bubblewrap.launch
    sandbox = Sandbox()
    control_read, control_write = os.pipe()
    steps = {
        "compile": (BY_NAME["cpp"], Step(compile=True, build_dir=tmp_path)),
        "run": (BY_NAME["cpp"], Step(build_dir=tmp_path)),
        "warm": (BY_NAME["python"], Step(control_fd=control_read)),
    }
    try:
        for name, (language, step) in steps.items():
            with sandbox.isolation.launch(language, b"", Limits(), None, None, step) as launch:
                fd = int(launch.argv[launch.argv.index("--seccomp") + 1])
                assert fd in launch.pass_fds, name
                assert os.pread(fd, 1 << 20, 0) == build_filter(), name
                # an option of bubblewrap's: after its executable, before the program's own argv
                bwrap = launch.argv.index(sandbox.isolation.executable)
                program = len(launch.argv) - 1 - launch.argv[::-1].index("--")
                assert bwrap < launch.argv.index("--seccomp") < program, name
    finally:
        os.close(control_read)
        os.close(control_write)


def test_io_uring_keyrings_perf_userfaultfd_and_bpf_are_refused(run_code):
    outcome = probe(
        run_code,
        {
            "io_uring_setup": "call(425, 8, 0)",
            "add_key": "call(248, 0, 0, 0, 0, 0)",
            "keyctl": "call(250, 0, -3)",
            "request_key": "call(249, 0, 0, 0, 0)",
            "perf_event_open": "call(298, 0, 0, -1, -1, 0)",
            # UFFD_USER_MODE_ONLY: the mode an unprivileged process may otherwise have
            "userfaultfd": "call(323, 1)",
            "bpf": "call(321, 0, 0, 0)",
            "unshare": "call(272, 0x20000)",
            "ptrace": "call(101, 0, 0, 0, 0)",
        },
    )

    assert outcome == {
        # as on a kernel without io_uring: runtimes that probe for it fall back
        "io_uring_setup": "ENOSYS",
        "add_key": "EPERM",
        "keyctl": "EPERM",
        "request_key": "EPERM",
        "perf_event_open": "EPERM",
        "userfaultfd": "EPERM",
        "bpf": "EPERM",
        "unshare": "EPERM",
        "ptrace": "EPERM",
    }


def test_vsock_packet_and_other_socket_families_are_refused_while_unix_inet_and_route_work(run_code):
    done = run_code(
        "import socket\n"
        "def try_open(family, kind, protocol=0):\n"
        "    try:\n"
        "        socket.socket(family, kind, protocol).close()\n"
        "        return 'ok'\n"
        "    except OSError as error:\n"
        "        return error.strerror\n"
        "print(try_open(40, socket.SOCK_STREAM))\n"  # AF_VSOCK: the hypervisor
        "print(try_open(17, socket.SOCK_RAW))\n"  # AF_PACKET
        "print(try_open(38, socket.SOCK_SEQPACKET))\n"  # AF_ALG
        "print(try_open(16, socket.SOCK_RAW, 9))\n"  # AF_NETLINK, NETLINK_AUDIT
        "print(try_open(socket.AF_UNIX, socket.SOCK_STREAM))\n"
        "print(try_open(socket.AF_INET, socket.SOCK_STREAM))\n"
        "print(try_open(socket.AF_INET6, socket.SOCK_DGRAM))\n"
        "print(try_open(16, socket.SOCK_RAW, 0))\n"  # AF_NETLINK, NETLINK_ROUTE: getaddrinfo uses it
    )

    assert done["status"] == "COMPLETED", done
    assert done["stdout"].splitlines() == [
        "Address family not supported by protocol",
        "Address family not supported by protocol",
        "Address family not supported by protocol",
        "Protocol not supported",
        "ok",
        "ok",
        "ok",
        "ok",
    ]


def test_personality_changes_are_refused_but_the_default_and_the_query_work(run_code):
    outcome = probe(
        run_code,
        {
            "ADDR_NO_RANDOMIZE": "call(135, 0x0040000)",
            "READ_IMPLIES_EXEC": "call(135, 0x0400000)",
            "hidden in the high bits": "call(135, 0x100040000)",
            "PER_LINUX": "call(135, 0)",
            "query": "call(135, 0xffffffff)",
        },
    )

    assert outcome == {
        "ADDR_NO_RANDOMIZE": "EPERM",
        "READ_IMPLIES_EXEC": "EPERM",
        "hidden in the high bits": "EPERM",
        "PER_LINUX": "ok",
        "query": "ok",
    }


@pytest.mark.parametrize(
    "call, name",
    [
        # i386 getpid through the 32-bit table
        ('asm volatile("int $0x80" : "=a"(result) : "a"(20L) : "memory");', "int 0x80"),
        # x32 getpid: the x86_64 table with bit 30 set
        ('asm volatile("syscall" : "=a"(result) : "a"(0x40000000L | 39L) : "rcx", "r11", "memory");', "x32"),
    ],
)
def test_a_foreign_syscall_table_kills_the_program(run_code, call, name):
    done = run_code(
        "#include <cstdio>\n"
        "int main() {\n"
        '    std::printf("before\\n"); std::fflush(stdout);\n'
        "    long result;\n"
        f"    {call}\n"
        '    std::printf("survived %ld\\n", result);\n'
        "}\n",
        language="cpp",
    )

    assert done["stdout"] == "before\n", f"{name}: {done}"
    assert done["status"] == "FAILED" and done["error"] == "signal", done
    assert done["exit_code"] == SIGSYS_EXIT


# two runs at once try to signal each other through a lock on a file both can open: each holds a
# shared lock and tries to make it exclusive, which fails while the other run holds its own
LOCK_CHANNEL = """
import errno, fcntl, time
what = []
for path in ("/usr/bin/env", "/dev/null"):
    with open(path, "rb") as file:
        for name, lock in (("flock", lambda: fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)),
                           ("lockf", lambda: fcntl.lockf(file, fcntl.LOCK_SH | fcntl.LOCK_NB))):
            try:
                lock()
                what.append(f"{name} {path} locked")
            except OSError as error:
                what.append(f"{name} {path} {errno.errorcode[error.errno]}")
shared = open("/usr/bin/env", "rb")
try:
    fcntl.flock(shared, fcntl.LOCK_SH)
except OSError:
    pass
end = time.monotonic() + 1.5
while time.monotonic() < end:
    try:
        fcntl.flock(shared, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(shared, fcntl.LOCK_SH)
    except BlockingIOError:
        what.append("saw the other run's lock")
        break
    except OSError:
        pass
    time.sleep(0.01)
print("\\n".join(what))
"""


def test_file_locks_cannot_pass_a_token_between_two_concurrent_runs(client):
    first, second = submit(client, LOCK_CHANNEL), submit(client, LOCK_CHANNEL)

    for done in (wait_terminal(client, first), wait_terminal(client, second)):
        assert done["status"] == "COMPLETED", done
        assert "saw the other run's lock" not in done["stdout"]
        assert done["stdout"].splitlines() == [
            "flock /usr/bin/env ENOLCK",
            "lockf /usr/bin/env ENOLCK",
            "flock /dev/null ENOLCK",
            "lockf /dev/null ENOLCK",
        ]


def test_sqlite_works_in_memory_and_on_a_file_without_locking(run_code):
    done = run_code(
        "import sqlite3\n"
        "for target in (':memory:', 'file:/box/learner.db?nolock=1'):\n"
        "    db = sqlite3.connect(target, uri=target.startswith('file:'))\n"
        "    db.execute('create table t (x)')\n"
        "    db.execute('insert into t values (42)')\n"
        "    db.commit()\n"
        "    print(db.execute('select x from t').fetchone()[0])\n"
    )

    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == "42\n42\n"


def test_threads_multiprocessing_subprocess_and_asyncio_still_work(run_code):
    done = run_code(
        "import asyncio, multiprocessing, subprocess, threading, concurrent.futures\n"
        "def square(x):\n"
        "    return x * x\n"
        "if __name__ == '__main__':\n"
        "    results = []\n"
        "    threads = [threading.Thread(target=lambda i=i: results.append(i)) for i in range(4)]\n"
        "    [t.start() for t in threads]; [t.join() for t in threads]\n"
        "    print('threads', sorted(results))\n"
        "    with multiprocessing.Pool(2) as pool:\n"
        "        print('pool', pool.map(square, range(4)))\n"
        "    queue = multiprocessing.Queue(); lock = multiprocessing.Lock()\n"
        "    with lock:\n"
        "        process = multiprocessing.Process(target=queue.put, args=('queued',)); process.start()\n"
        "        print('process', queue.get()); process.join()\n"
        "    with concurrent.futures.ProcessPoolExecutor(2) as executor:\n"
        "        print('executor', list(executor.map(square, [5])))\n"
        "    print('subprocess', subprocess.run(['echo', 'child'], capture_output=True, text=True).stdout.strip())\n"
        "    async def main():\n"
        "        process = await asyncio.create_subprocess_exec('echo', 'async', stdout=asyncio.subprocess.PIPE)\n"
        "        out, _ = await process.communicate()\n"
        "        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])\n"
        "        writer.write(b'ping\\n'); await writer.drain(); reply = await reader.readline(); writer.close()\n"
        "        return out.decode().strip(), reply.decode().strip()\n"
        "    async def serve():\n"
        "        global server\n"
        "        async def echo(reader, writer):\n"
        "            writer.write(await reader.readline()); await writer.drain(); writer.close()\n"
        "        server = await asyncio.start_server(echo, '127.0.0.1', 0)\n"
        "        return await main()\n"
        "    print('asyncio', asyncio.run(serve()))\n",
        wait=60,
    )

    assert done["status"] == "COMPLETED", done
    assert done["stdout"].splitlines() == [
        "threads [0, 1, 2, 3]",
        "pool [0, 1, 4, 9]",
        "process queued",
        "executor [25]",
        "subprocess child",
        "asyncio ('async', 'ping')",
    ]


def test_node_worker_threads_and_child_processes_still_work(run_code):
    done = run_code(
        "const { Worker } = require('worker_threads');\n"
        "const { execFileSync } = require('child_process');\n"
        "const dns = require('dns');\n"
        "const worker = new Worker('require(\"worker_threads\").parentPort.postMessage(6 * 7)', { eval: true });\n"
        "worker.on('message', (value) => {\n"
        "  console.log('worker', value);\n"
        "  console.log('child', execFileSync('echo', ['hi']).toString().trim());\n"
        "  dns.lookup('localhost', (error, address) => console.log('lookup', error ? error.code : address));\n"
        "});\n",
        language="javascript",
    )

    assert done["status"] == "COMPLETED", done
    lines = done["stdout"].splitlines()
    assert lines[:2] == ["worker 42", "child hi"]
    # the resolver ran (the sandbox has no /etc/hosts: whatever it answers, it did not crash)
    assert lines[2].startswith("lookup ")


# busy processes that take more CPU than RUN_CPU_SECONDS between them, none alone reaching it (on a
# loaded host the whole engine's cgroup may get a fraction of a core: they run long enough anyway)
CPU_SPREAD = """
import os, time
children = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + 7
        while time.monotonic() < end:
            pass
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print("survived")
"""


def test_a_run_is_held_to_its_cpu_seconds_across_all_its_processes(config):
    app = create_app({**config, "RUN_CPU_SECONDS": 1, "RUN_TIMEOUT_SECONDS": 10.0})
    try:
        client = app.test_client()
        done = wait_terminal(client, submit(client, CPU_SPREAD))
    finally:
        app.extensions["engine"].runner.shutdown()

    assert done["status"] == "TIMEOUT" and done["error"] == "cpu_time_limit", json.dumps(done)
    assert "survived" not in done["stdout"]
    assert app.extensions["engine"].sandbox.describe()["cpu_time_limit_by"] == "cgroup+rlimit_cpu"


# 40 busy processes: without a CPU cap they take the machine from every other run
CPU_HOG = """
import os
for _ in range(39):
    if os.fork() == 0:
        break
while True:
    pass
"""
# a neighbour that needs half a second of CPU: on a 2-core host shared with 40 hogs it gets ~5% of a
# core, so it cannot finish within its wall clock; with the hog held to one core it takes about a second
NEIGHBOUR = """
import time
end = time.process_time() + 0.5
while time.process_time() < end:
    pass
print("done")
"""


def test_a_cpu_hog_does_not_starve_a_run_in_another_slot(config):
    app = create_app({**config, "RUN_CPU_SECONDS": 30, "RUN_TIMEOUT_SECONDS": 6.0})
    try:
        client = app.test_client()
        hog = submit(client, CPU_HOG)
        deadline = time.monotonic() + 20
        while client.get(f"/executions/{hog}").json["status"] != "RUNNING":
            assert time.monotonic() < deadline, "the hog never started"
            time.sleep(0.05)
        # let its 40 processes start
        time.sleep(0.5)
        neighbour = wait_terminal(client, submit(client, NEIGHBOUR))
        hello = wait_terminal(client, submit(client, 'print("hello")'))
        hog_done = wait_terminal(client, hog)
    finally:
        app.extensions["engine"].runner.shutdown()

    assert neighbour["status"] == "COMPLETED" and neighbour["stdout"] == "done\n", neighbour
    assert hello["status"] == "COMPLETED" and hello["stdout"] == "hello\n", hello
    # the hog was still running while both ran beside it
    assert hog_done["status"] == "TIMEOUT", hog_done
    assert app.extensions["engine"].sandbox.describe()["cpu_cores_per_run"] == 1.0


# four busy processes for 1.5 s of wall clock, then the CPU they used per second of it
CORES_USED = """
import os, time
started = time.monotonic()
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        while time.monotonic() < started + 1.5:
            pass
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
times = os.times()
print(round((times.children_user + times.children_system) / (time.monotonic() - started), 2))
"""


def test_a_run_gets_at_most_one_cores_worth_of_cpu(run_code):
    # without a cap, on an idle 2-core host, this says about 2.0 (on main it did, when the host was idle)
    done = run_code(CORES_USED)

    assert done["status"] == "COMPLETED", done
    # CFS bandwidth: 100 ms per 100 ms period, so at most one period's slack over 1.5 s
    assert float(done["stdout"]) <= 1.1, done["stdout"]


def big_program(fill: int, size: int) -> str:
    """A C++ program whose binary holds size bytes of initialised data."""
    return (
        "#include <cstdio>\n"
        f"static char data[{size}] = {{{fill}}};\n"
        'int main(int argc, char**) { std::printf("%d\\n", data[argc - 1]); }\n'
    )


def cache_bytes(directory: str) -> int:
    """What the cache's entries hold on disk (compiles under way in .staging are not entries yet)."""
    entries = [entry for entry in Path(directory).iterdir() if not entry.name.startswith(".")]
    return sum(path.stat().st_size for entry in entries for path in entry.rglob("*") if path.is_file())


def test_the_compile_cache_stays_within_its_limit(config):
    app = create_app({**config, "COMPILE_CACHE_BYTES": 1 * MiB})
    try:
        client = app.test_client()
        for fill in range(1, 5):
            done = wait_terminal(client, submit(client, big_program(fill, 400_000), "cpp"))
            assert done["status"] == "COMPLETED" and done["stdout"] == f"{fill}\n", json.dumps(done)
            # no run holds an artifact now: the cache is within its limit
            assert 0 < cache_bytes(config["COMPILE_CACHE_DIR"]) <= 1 * MiB
        # larger than the whole cache: it runs once and is not kept
        before = cache_bytes(config["COMPILE_CACHE_DIR"])
        done = wait_terminal(client, submit(client, big_program(7, 1_500_000), "cpp"))
        assert done["status"] == "COMPLETED" and done["stdout"] == "7\n", done
        assert cache_bytes(config["COMPILE_CACHE_DIR"]) == before
        assert client.get("/health").json["compile_cache"] == {"bytes": before, "max_bytes": 1 * MiB}
    finally:
        app.extensions["engine"].runner.shutdown()


def test_eviction_spares_an_artifact_in_use_in_another_process(tmp_path):
    cache = CompileCache(tmp_path / "cache", max_bytes=0)
    staging = cache.staging(None)
    (staging / "main").write_bytes(b"x" * 1000)
    cache.max_bytes = 10_000
    artifact = cache.publish("key", staging)
    assert artifact.cached
    cache.max_bytes = 0

    # another engine process, with a cache of its own over the same directory, evicts; so does this one
    other = CompileCache(tmp_path / "cache", max_bytes=0)
    other.evict()
    cache.evict()
    assert (artifact.path / "main").exists(), "evicted while a run had it in use"

    artifact.release()
    # the release evicts what the eviction had to spare
    assert not artifact.path.exists()
    assert other.acquire("key") is None


def test_turning_the_filter_off_for_diagnosis_shows_in_health(config):
    app = create_app({**config, "SANDBOX_SYSCALL_FILTER": False})
    try:
        client = app.test_client()
        assert client.get("/health").json["isolation"]["syscall_filter"] is None
        done = wait_terminal(client, submit(client, 'print(open("/proc/self/status").read().split("Seccomp:")[1].split()[0])'))
        assert done["status"] == "COMPLETED" and done["stdout"] == "0\n", done
    finally:
        app.extensions["engine"].runner.shutdown()


def fake_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_cgroup_v2_cpu_max_weight_and_usage(tmp_path):
    # a v2 hierarchy as the kernel lays it out (plain files stand in for the kernel's)
    fake_tree(tmp_path, {
        "cgroup.controllers": "cpuset cpu io memory pids\n",
        "cgroup.subtree_control": "",
        # the kernel gives every group a cpu.stat: here, the probe's detection reads
        "engine/probe/cpu.stat": "usage_usec 0\n",
    })
    cgroups = Cgroups.detect("engine", root=tmp_path, cpu_cores=1.5)
    assert cgroups is not None and cgroups.version == "v2"
    assert (tmp_path / "engine" / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"

    group = cgroups.slot(3)
    assert (tmp_path / "engine/slot-3/cpu.max").read_text() == "150000 100000"
    assert (tmp_path / "engine/slot-3/cpu.weight").read_text() == "100"
    (tmp_path / "engine/slot-3/cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    assert group.counts_cpu and group.cpu_used_ns() == 2_500_000_000


def test_cgroup_v1_cpu_and_cpuacct_mounted_apart(tmp_path):
    fake_tree(tmp_path, {
        "memory/memory.limit_in_bytes": "9223372036854771712",
        "pids/cgroup.procs": "",
        "cpu/cpu.cfs_quota_us": "-1",
        "cpuacct/cpuacct.usage": "0",
        "cpuacct/engine/probe/cpuacct.usage": "0",
    })
    cgroups = Cgroups.detect("engine", root=tmp_path, cpu_cores=1.0)
    assert cgroups is not None and cgroups.version == "v1"

    group = cgroups.slot(0)
    assert (tmp_path / "cpu/engine/slot-0/cpu.cfs_quota_us").read_text() == "100000"
    assert (tmp_path / "cpu/engine/slot-0/cpu.cfs_period_us").read_text() == "100000"
    assert (tmp_path / "cpu/engine/slot-0/cpu.shares").read_text() == "1024"
    (tmp_path / "cpuacct/engine/slot-0/cpuacct.usage").write_text("123456789\n")
    assert group.cpu_used_ns() == 123456789
    # a process joins every hierarchy, so its CPU is both capped and counted
    group.add(4242)
    for hierarchy in ("memory", "pids", "cpu", "cpuacct"):
        assert (tmp_path / hierarchy / "engine/slot-0/cgroup.procs").read_text() == "4242"


def test_an_unreadable_cpu_usage_falls_back_to_rlimit_cpu(tmp_path):
    # cpuacct mounted, but the probe's usage cannot be read
    fake_tree(tmp_path, {
        "memory/memory.limit_in_bytes": "9223372036854771712",
        "pids/cgroup.procs": "",
        "cpuacct/cpuacct.usage": "0",
    })
    cgroups = Cgroups.detect("engine", root=tmp_path)

    assert cgroups is not None and cgroups.cpuacct_base is None
    assert not cgroups.slot(0).counts_cpu


def test_a_refused_cpu_cap_keeps_the_other_controllers(tmp_path):
    fake_tree(tmp_path, {
        "memory/memory.limit_in_bytes": "9223372036854771712",
        "pids/cgroup.procs": "",
        "cpu/cpu.cfs_quota_us": "-1",
        "cpuacct/cpuacct.usage": "0",
        "cpuacct/engine/probe/cpuacct.usage": "0",
    })
    # a directory where the quota file should be: writing it fails, as a refusing kernel's would
    (tmp_path / "cpu/engine/probe/cpu.cfs_period_us").mkdir(parents=True)
    cgroups = Cgroups.detect("engine", root=tmp_path)

    assert cgroups is not None and cgroups.version == "v1"
    assert cgroups.cpu_base is None and cgroups.cpuacct_base is not None


def test_without_cpu_controllers_the_cpu_limit_is_per_process(tmp_path):
    fake_tree(tmp_path, {"memory/memory.limit_in_bytes": "9223372036854771712", "pids/cgroup.procs": ""})
    cgroups = Cgroups.detect("engine", root=tmp_path)

    group = cgroups.slot(0)
    assert not group.counts_cpu
    assert cgroups.cpu_base is None and cgroups.cpuacct_base is None
