"""The fork server (app/sandbox/forkserver.py): a run forked from it sees what a cold run sees, and
nothing a run leaves or does reaches the next run of the same slot or the server itself."""
from __future__ import annotations

import json
import os
import subprocess

import psutil
import pytest

from app.sandbox import BY_NAME, Limits, Sandbox, Settings
from support.slots import slot_processes

PYTHON = BY_NAME["python"]


@pytest.fixture
def sandbox(slot):
    sandbox = Sandbox(Settings(fork_server=True))
    yield sandbox
    sandbox.clear_slot(slot)


def run(sandbox: Sandbox, slot: int, source: str, stdin: str = "", **kwargs):
    return sandbox.run(PYTHON, source.encode(), stdin.encode(), Limits(**kwargs), slot)


def served_by_one_server(sandbox: Sandbox, slot: int, runs: int) -> bool:
    server = sandbox.fork_servers.servers.get(slot)
    return server is not None and server.runs == runs and sandbox.fork_server_starts == 1


# what a program can learn about how it was started: all of it must be the same, forked or cold
INTROSPECT = r'''
import gc, json, os, resource, signal, sys
def status(key):
    return [line.split(":", 1)[1].strip() for line in open("/proc/self/status") if line.startswith(key + ":")]
print(json.dumps({
    "name": __name__, "file": __file__, "argv": sys.argv, "orig_argv": sys.orig_argv, "cwd": os.getcwd(),
    "path": sys.path, "modules": sorted(sys.modules), "flags": str(sys.flags),
    "streams": [(s.encoding, s.errors, s.line_buffering, s.isatty(), s.fileno()) for s in (sys.stdin, sys.stdout, sys.stderr)],
    "signals": {n: str(signal.getsignal(n)) for n in signal.valid_signals() if n not in (signal.SIGKILL, signal.SIGSTOP)},
    "ids": [os.getpid(), os.getppid(), os.getuid(), os.getgid(), os.getgroups(), os.getsid(0) == os.getpid()],
    "rlimits": {n: resource.getrlimit(getattr(resource, n)) for n in ("RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_AS")},
    "umask": os.umask(0o22), "env": dict(os.environ), "fds": sorted(os.listdir("/proc/self/fd")),
    "security": [status(k) for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh", "NoNewPrivs", "Seccomp", "Threads")],
    "frozen": gc.get_freeze_count(), "dirs": {d: sorted(os.listdir(d)) for d in ("/box", "/tmp", "/dev/shm")},
    # as a set: a forked run's /proc is mounted over the server's (docs/security.md)
    "mounts": sorted({line.split()[1] for line in open("/proc/self/mounts")}),
    "hostname": os.uname().nodename, "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "main_attrs": sorted(k for k in globals() if k.startswith("__")),
}, sort_keys=True))
def broken():
    return 1 / 0
broken()
'''


def test_a_forked_run_sees_exactly_what_a_cold_run_sees(sandbox, slot):
    forked = run(sandbox, slot, INTROSPECT)
    cold_sandbox = Sandbox(Settings(fork_server=False))
    cold = run(cold_sandbox, slot, INTROSPECT)

    assert served_by_one_server(sandbox, slot, 1)
    assert cold_sandbox.describe()["start_paths"]["python"] == "cold"
    assert (forked.exit_code, forked.reason) == (cold.exit_code, cold.reason) == (1, "nonzero_exit")
    assert json.loads(forked.stdout) == json.loads(cold.stdout)
    # the traceback names the learner's file and lines, and nothing of the server
    assert forked.stderr == cold.stderr
    assert 'File "/box/main.py", line 21, in broken' in forked.stderr


def test_files_and_arguments_reach_a_forked_run(sandbox, slot):
    source = "import sys, helper\nprint(sys.argv, helper.VALUE, open('data/input.txt').read())\n"
    result = sandbox.run(
        PYTHON, source.encode(), b"", Limits(), slot,
        files={"helper.py": b"VALUE = 42\n", "data/input.txt": b"text"}, args=("a", "b c"),
    )

    assert result.exit_code == 0, result
    assert result.stdout == "['main.py', 'a', 'b c'] 42 text\n"
    assert served_by_one_server(sandbox, slot, 1)


LEAVE_BEHIND = r'''
import builtins, ctypes, json, os, signal, socket, subprocess, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
# a thread and a process still running, a SysV segment and semaphore set, files everywhere writable
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
subprocess.Popen(["/usr/bin/sleep", "60"], start_new_session=True, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
assert libc.shmget(0x5eed, 4096, 0o1666) >= 0
assert libc.semget(0x5eed, 1, 0o1666) >= 0
for place in ("/box", "/tmp", "/dev/shm"):
    open(f"{place}/left-behind", "w").write("secret")
# listening sockets: TCP on the loopback, an abstract and a named unix socket
tcp = socket.socket(); tcp.bind(("127.0.0.1", 40123)); tcp.listen()
unix = socket.socket(socket.AF_UNIX); unix.bind("\0left-behind"); unix.listen()
# the interpreter's state: a module changed in memory, the environment, cwd, a signal handler
import json as js
js.dumps = lambda *args, **kwargs: "hacked"
builtins.print_was = builtins.print
sys.modules["planted"] = type(sys)("planted")
sys.path.append("/tmp")
os.environ["LEFT_BEHIND"] = "yes"
os.chdir("/tmp")
signal.signal(signal.SIGTERM, lambda *a: None)
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
os.umask(0o077)
print("left", flush=True)
'''

CHECK_CLEAN = r'''
import builtins, ctypes, json, os, signal, socket, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
found = {}
found["threads"] = threading.active_count(), len(os.listdir("/proc/self/task"))
found["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
found["shm"] = libc.shmget(0x5eed, 0, 0), open("/proc/sysvipc/shm").read().count("\n")
found["sem"] = libc.semget(0x5eed, 0, 0), open("/proc/sysvipc/sem").read().count("\n")
found["files"] = [sorted(os.listdir(place)) for place in ("/box", "/tmp", "/dev/shm")]
def refused(family, address):
    try:
        socket.socket(family).connect(address)
        return False
    except OSError:
        return True
found["sockets"] = refused(socket.AF_INET, ("127.0.0.1", 40123)), refused(socket.AF_UNIX, "\0left-behind")
found["tcp_listeners"] = [l for l in open("/proc/net/tcp").read().splitlines()[1:] if l.split()[3] == "0A"]
found["unix"] = [l for l in open("/proc/net/unix").read().splitlines()[1:]]
found["json"] = json.dumps({"a": 1})
found["builtins"] = hasattr(builtins, "print_was")
found["modules"] = "planted" in sys.modules
found["path"] = "/tmp" in sys.path
found["env"] = "LEFT_BEHIND" in os.environ
found["cwd"] = os.getcwd()
found["signals"] = [signal.getsignal(n) == signal.SIG_DFL for n in (signal.SIGTERM, signal.SIGUSR1)]
found["umask"] = os.umask(0o22)
print(json.dumps(found))
'''


def test_nothing_a_run_leaves_reaches_the_next_run_of_the_slot(sandbox, slot):
    left = run(sandbox, slot, LEAVE_BEHIND)
    checked = run(sandbox, slot, CHECK_CLEAN)

    assert left.exit_code == 0 and left.stdout == "left\n", left
    assert checked.exit_code == 0, checked
    assert served_by_one_server(sandbox, slot, 2)
    found = json.loads(checked.stdout)
    assert found["threads"] == [1, 1]
    # its init and itself: the sleeper and the thread went with the last run's namespace
    assert found["processes"] == [1, 2]
    assert found["shm"] == [-1, 1] and found["sem"] == [-1, 1]
    assert found["files"] == [["main.py"], [], []]
    assert found["sockets"] == [True, True]
    assert found["tcp_listeners"] == [] and found["unix"] == []
    assert found["json"] == '{"a": 1}'
    assert (found["builtins"], found["modules"], found["path"], found["env"]) == (False, False, False, False)
    assert found["cwd"] == "/box"
    assert found["signals"] == [True, True]
    assert found["umask"] == 0o022


# forks children that wait, until the process cap refuses one; prints how many it got
PROCESS_CAP = r"""
import os, time
children = []
while len(children) < 64:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children.append(pid)
print(len(children), flush=True)
"""


def test_a_forked_run_may_start_exactly_as_many_processes_as_a_cold_run(sandbox, slot):
    # the server and the run's init are in the slot too: its caps are raised by exactly those two
    forked = [run(sandbox, slot, PROCESS_CAP, processes=12) for _ in range(2)]
    cold = run(Sandbox(Settings(fork_server=False)), slot, PROCESS_CAP, processes=12)

    assert cold.reason is None and 0 < int(cold.stdout) < 12, cold
    assert [(r.reason, r.stdout) for r in forked] == [(None, cold.stdout)] * 2, forked


REACH_THE_SERVER = r'''
import ctypes, errno, json, os, signal
libc = ctypes.CDLL(None, use_errno=True)
found = {"pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()), "fds": sorted(os.listdir("/proc/self/fd"))}
# every descriptor number the server or the init ever had: none is open here
found["open_fds"] = []
for fd in range(3, 256):
    try:
        os.fstat(fd)
        found["open_fds"].append(fd)
    except OSError:
        pass
# the init: its memory, descriptors and a debugger's attach
for what in ("mem", "environ", "fd"):
    try:
        os.listdir("/proc/1/fd") if what == "fd" else open(f"/proc/1/{what}", "rb").read(1)
        found[what] = "readable"
    except OSError as error:
        found[what] = errno.errorcode[error.errno]
found["ptrace"] = libc.ptrace(16, 1, 0, 0), errno.errorcode.get(ctypes.get_errno())
found["process_vm_readv"] = libc.process_vm_readv(1, None, 0, None, 0, 0), errno.errorcode.get(ctypes.get_errno())
# signals to every pid number the server's sandbox could have: none of them exist here
found["signalled"] = []
for pid in range(3, 200):
    try:
        os.kill(pid, signal.SIGKILL)
        found["signalled"].append(pid)
    except ProcessLookupError:
        pass
os.kill(1, signal.SIGKILL)
found["setns"] = libc.setns(-1, 0), libc.unshare(0x20000)
# every other process of its namespace (there is none): nothing outside it
try:
    os.kill(-1, signal.SIGKILL)
    found["kill_all"] = "sent"
except ProcessLookupError:
    found["kill_all"] = "nobody"
print(json.dumps(found), flush=True)
'''


def test_a_run_cannot_reach_the_server_or_its_init(sandbox, slot):
    reached = run(sandbox, slot, REACH_THE_SERVER)
    after = run(sandbox, slot, 'print("still serving")')

    found = json.loads(reached.stdout)
    assert found["pids"] == [1, 2]
    assert found["fds"] == ["0", "1", "2", "3"] and found["open_fds"] == []
    assert (found["mem"], found["environ"], found["fd"]) == ("EACCES", "EACCES", "EACCES")
    assert found["ptrace"] == [-1, "EPERM"] and found["process_vm_readv"] == [-1, "EPERM"]
    assert found["signalled"] == []
    assert found["setns"] == [-1, -1]
    assert found["kill_all"] == "nobody"
    assert reached.exit_code == 0, reached
    assert after.stdout == "still serving\n"
    assert served_by_one_server(sandbox, slot, 2)


def test_the_server_is_not_dumpable_and_holds_no_capability_in_a_run(sandbox, slot):
    run(sandbox, slot, 'print("started")')
    server = sandbox.fork_servers.servers[slot]
    engine_side = psutil.Process(server._server_pid)

    # a non-dumpable process's memory, environment and descriptors belong to root, not to the
    # slot's uid it runs as (a run has that uid too)
    if sandbox.as_root:
        assert engine_side.uids().real == sandbox.slot_user(slot)
    for entry in ("mem", "environ", "fd"):
        assert os.stat(f"/proc/{server._server_pid}/{entry}").st_uid == 0, entry


def test_a_process_left_in_the_slot_makes_the_server_start_afresh(sandbox, slot):
    run(sandbox, slot, 'print("one")')
    group = sandbox.slot_group(slot)
    if group is None:
        pytest.skip("no cgroups on this host: the uid check stands in for the cgroup one")
    stray = subprocess.Popen(["/usr/bin/sleep", "30"])
    try:
        group.add(stray.pid)
        again = run(sandbox, slot, 'print("two")')
    finally:
        stray.kill()
        stray.wait()

    assert again.stdout == "two\n"
    assert sandbox.fork_server_starts == 2
    assert sandbox.fork_servers.servers[slot].runs == 1


def test_a_server_serves_its_runs_then_a_fresh_one_takes_over(slot):
    sandbox = Sandbox(Settings(fork_server=True, fork_server_runs=2))
    try:
        results = [run(sandbox, slot, f"print({n})") for n in range(3)]
    finally:
        sandbox.clear_slot(slot)

    assert [r.stdout for r in results] == ["0\n", "1\n", "2\n"]
    assert sandbox.fork_server_starts == 2


def test_a_run_with_other_limits_gets_a_server_of_its_own(sandbox, slot):
    small = run(sandbox, slot, "open('/box/big', 'wb').write(b'x' * 3_000_000)", disk_bytes=2 * 1024 * 1024)
    large = run(sandbox, slot, "open('/box/big', 'wb').write(b'x' * 3_000_000)", disk_bytes=8 * 1024 * 1024)

    assert small.reason == "disk_limit", small
    assert large.exit_code == 0, large
    assert sandbox.fork_server_starts == 2


def test_a_timeout_and_an_output_flood_end_the_run_and_not_the_server(sandbox, slot):
    slow = run(sandbox, slot, "while True: pass", timeout_seconds=0.5, cpu_seconds=5)
    flood = run(sandbox, slot, "while True: print('x' * 1000)", output_bytes=4096)
    after = run(sandbox, slot, 'print("fine")')

    assert slow.reason in {"timeout", "cpu_time_limit"}, slow
    assert flood.reason == "output_limit" and flood.stdout_truncated
    assert after.stdout == "fine\n"
    assert served_by_one_server(sandbox, slot, 3)


def test_health_says_which_start_path_is_in_force(config, request):
    from app import create_app

    app = create_app({**config, "FORK_SERVER": True})
    request.addfinalizer(app.extensions["engine"].runner.shutdown)
    rv = app.test_client().get("/health")

    isolation = rv.json["isolation"]
    assert isolation["start_paths"]["python"] == "fork_server"
    assert isolation["fork_server"]["enabled"] is True
    assert "python" in isolation["fork_server"]["reason"]
    # and why each language starts the way it does
    assert "fork server" in isolation["start_path_reasons"]["python"]
    assert set(isolation["start_path_reasons"]) == set(isolation["start_paths"])


def test_the_fork_server_is_on_by_default(tmp_path):
    from app import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'e.db'}", "RUNNER_ENABLED": False})
    isolation = app.test_client().get("/health").json["isolation"]

    assert isolation["start_paths"]["python"] == "fork_server", isolation["fork_server"]


def test_the_setting_turns_the_fork_server_off(tmp_path):
    from app import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'e.db'}", "FORK_SERVER": False, "RUNNER_ENABLED": False})
    isolation = app.test_client().get("/health").json["isolation"]

    assert isolation["start_paths"]["python"] in {"warm", "cold"}
    assert isolation["fork_server"] == {**isolation["fork_server"], "enabled": False, "reason": "turned off by the FORK_SERVER setting"}
    assert "turned off by the FORK_SERVER setting" in isolation["start_path_reasons"]["python"]


DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(60)
    os._exit(0)
os.wait()
print(len([p for p in os.listdir("/proc") if p.isdigit()]))
"""


def test_a_daemon_is_gone_from_the_host_before_the_next_fork(sandbox, slot):
    result = run(sandbox, slot, DAEMON)
    server = sandbox.fork_servers.servers[slot]
    # the server's word comes first (it is awaited before the next fork), then the host's view
    server.settle()

    assert result.reason is None and int(result.stdout) >= 3, result
    assert server.broken is None
    names = set()
    for pid in set(slot_processes(sandbox, slot)) - server._own_pids:
        with open(f"/proc/{pid}/comm") as comm:
            names.add(comm.read().strip())
    # only the next run's init and program, prepared and waiting
    assert names <= {"run-init", "run-ready"}, names


def test_a_host_that_refuses_the_fork_server_runs_cold_and_says_why(slot, monkeypatch):
    # without its capabilities the server cannot mount a run's filesystems: its start fails
    monkeypatch.setattr("app.sandbox.isolation.FORK_SERVER_CAPS", ())
    sandbox = Sandbox(Settings(fork_server=True))
    try:
        results = [run(sandbox, slot, f"print({n})") for n in range(4)]
    finally:
        sandbox.clear_slot(slot)

    assert [r.stdout for r in results] == ["0\n", "1\n", "2\n", "3\n"]
    described = sandbox.describe()
    assert described["start_paths"]["python"] == "cold"
    assert described["fork_server"]["enabled"] is False
    assert "failed to start 3 times" in described["fork_server"]["reason"]
    assert "the fork server did not start" in described["fork_server"]["last_error"]


def test_descriptors_numbered_past_1023_in_the_engine_reach_the_server(slot):
    # an engine process with many descriptors open passes the server numbers past select()'s reach
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if max(soft, hard) < 1300:
        pytest.skip("this process may not open 1300 descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1300), hard))
    filler = []
    try:
        while not filler or filler[-1] < 1100:
            filler.append(os.open("/dev/null", os.O_RDONLY))
        sandbox = Sandbox(Settings(fork_server=True))
        try:
            results = [run(sandbox, slot, f"print({n})") for n in range(2)]
        finally:
            sandbox.clear_slot(slot)
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    assert [r.stdout for r in results] == ["0\n", "1\n"]
    assert sandbox.fork_server_starts == 1
