"""Hostile programs through the whole engine (HTTP, runner, sandbox): each must be contained, and the engine must live."""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest
from werkzeug.serving import make_server

from app.sandbox.isolation import NPROC_SLACK
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

RLIMITS = """
import json, resource
print(json.dumps({name: resource.getrlimit(getattr(resource, name))
                  for name in ("RLIMIT_NPROC", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CORE")}))
"""


def test_limits_are_in_force_inside_a_run(run_code, app):
    done = run_code(RLIMITS)

    assert done["status"] == "COMPLETED", done
    limits = json.loads(done["stdout"])
    # with a pids cgroup holding the run to 32, the uid's RLIMIT_NPROC is a backstop just above it
    nproc = 32 + NPROC_SLACK if app.extensions["engine"].sandbox.cgroups else 32
    assert limits["RLIMIT_NPROC"] == [nproc, nproc]
    assert limits["RLIMIT_CPU"][0] == 2
    assert limits["RLIMIT_FSIZE"] == [8 * MiB, 8 * MiB]
    assert limits["RLIMIT_CORE"] == [0, 0]


# ---------------------------------------------------------------- filesystem

PROBE_PATHS = """
import json, os, sys
targets = json.load(sys.stdin)
leaks = []
for path in targets["read"]:
    try:
        if os.path.isdir(path):
            leaks.append([path, "listed", os.listdir(path)[:5]])
        else:
            with open(path, "rb") as f:
                leaks.append([path, "read", f.read(32).hex()])
    except OSError:
        pass
for path in targets["write"]:
    try:
        with open(path, "ab") as f:
            f.write(b"pwned")
        leaks.append([path, "written"])
    except OSError:
        pass
# control: the program does read files it should read
own = open("/box/main.py").read(10)
print(json.dumps({"leaks": leaks, "own": own}))
"""


def test_program_cannot_read_or_write_the_engines_files(app, client, run_code):
    database = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    project = Path(__file__).resolve().parents[1]
    token = uuid.uuid4().hex
    assert database.exists() and (project / "app").is_dir()
    planted = [
        database.parent / f"pwned-{token}",
        project / f"pwned-{token}",
        Path(app.instance_path) / f"pwned-{token}",
        Path("/root") / f"pwned-{token}",
        Path("/etc") / f"pwned-{token}",
        Path("/usr") / f"pwned-{token}",
    ]
    targets = {
        "read": [
            str(database), str(database) + "-wal", str(database.parent), str(project), str(project / "app" / "config.py"),
            app.instance_path, "/root", "/etc/shadow", "/etc/passwd", "/work",
        ],
        "write": [str(database), *map(str, planted)],
    }
    try:
        done = run_code(PROBE_PATHS, stdin=json.dumps(targets))

        assert done["status"] == "COMPLETED", done
        report = json.loads(done["stdout"])
        assert report["own"] == PROBE_PATHS[:10]
        # a write only matters where it lands on the host (the sandbox has its own private /etc)
        assert [leak for leak in report["leaks"] if leak[1] != "written"] == []
        assert [path for path in planted if path.exists()] == []
        assert b"pwned" not in database.read_bytes()[-4096:]
        assert client.get("/health/db").status_code == 200
    finally:
        for path in planted:
            path.unlink(missing_ok=True)
    assert_engine_serves(client)


WRITE_KEEPSAKES = """
import sys
token = sys.stdin.read()
for directory in ("/box", "/tmp", "/dev/shm"):
    with open(f"{directory}/keep-{token}", "w") as f:
        f.write("left behind")
print("written")
"""

LOOK_FOR_KEEPSAKES = """
import json, os, sys
token = sys.stdin.read()
found = [d for d in ("/box", "/tmp", "/dev/shm") if os.path.exists(f"{d}/keep-{token}")]
print(json.dumps({"found": found, "box": sorted(os.listdir("/box")), "tmp": os.listdir("/tmp")}))
"""


def test_what_a_run_writes_does_not_survive_it(client, run_code):
    token = uuid.uuid4().hex

    first = run_code(WRITE_KEEPSAKES, stdin=token)
    second = run_code(LOOK_FOR_KEEPSAKES, stdin=token)

    assert first["status"] == "COMPLETED" and first["stdout"] == "written\n", first
    assert second["status"] == "COMPLETED", second
    assert json.loads(second["stdout"]) == {"found": [], "box": ["main.py"], "tmp": []}


FILL = """
import json, sys
job = json.load(sys.stdin)
written = 0
chunk = b"x" * 65536
try:
    index = 0
    while written < job["stop_after"]:
        with open(f"{job['dir']}/fill-{index}", "wb", buffering=0) as f:
            in_file = 0
            while in_file < job["file_bytes"] and written < job["stop_after"]:
                count = f.write(chunk)
                in_file += count
                written += count
        index += 1
finally:
    print(written, flush=True)
"""


def host_disk_used() -> int:
    paths = {os.stat(path).st_dev: path for path in ("/", tempfile.gettempdir(), os.getcwd())}
    return sum(shutil.disk_usage(path).used for path in paths.values())


@pytest.mark.parametrize(
    "directory, file_bytes, error",
    [
        ("/box", 1 * MiB, "disk_limit"),
        ("/tmp", 1 * MiB, "disk_limit"),
        ("/box", 1024 * MiB, "file_size_limit"),
    ],
)
def test_a_disk_filler_stops_at_the_limit_and_spares_the_host(client, run_code, directory, file_bytes, error):
    disk = HOSTILE_LIMITS["RUN_DISK_BYTES"]
    cap = disk if error == "disk_limit" else HOSTILE_LIMITS["RUN_FILE_SIZE_BYTES"]
    used_before = host_disk_used()

    done = run_code(FILL, stdin=json.dumps({"dir": directory, "file_bytes": file_bytes, "stop_after": 4 * disk}))

    assert done["status"] == "FAILED", done
    assert done["error"] == error, done
    written = int(done["stdout"])
    assert cap // 2 < written <= cap
    assert host_disk_used() - used_before < written // 2
    assert_engine_serves(client)


@pytest.mark.parametrize("directory", ["/dev/shm", "/dev", "/etc", "/"])
def test_no_writable_place_in_the_sandbox_escapes_the_disk_limit(client, run_code, directory):
    disk = HOSTILE_LIMITS["RUN_DISK_BYTES"]

    done = run_code(FILL, stdin=json.dumps({"dir": directory, "file_bytes": 1 * MiB, "stop_after": 2 * disk}))

    written = int(done["stdout"] or 0)
    assert written <= disk, f"wrote {written} bytes to {directory}, past the disk limit of {disk}: {done}"
    assert done["status"] == "FAILED", done
    # either a sized tmpfs that fills up, or a read-only place that takes nothing at all
    read_only = written == 0 and "Read-only file system" in done["stderr"]
    assert done["error"] in {"disk_limit", "file_size_limit"} or read_only, done
    assert_engine_serves(client)


# ---------------------------------------------------------------- network

CONNECT = """
import json, socket, sys
reached, errors = [], {}
for host, port in json.load(sys.stdin):
    try:
        with socket.create_connection((host, port), timeout=1):
            reached.append([host, port])
    except OSError as error:
        errors[f"{host}:{port}"] = type(error).__name__
print(json.dumps({"reached": reached, "errors": errors, "interfaces": [n for _, n in socket.if_nameindex()]}))
"""


def test_no_outbound_tcp_to_the_host_or_the_engine(app, client, run_code):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen()
    try:
        engine_port, port = server.server_port, listener.getsockname()[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{engine_port}/health", timeout=10) as rv:
            assert rv.status == 200
        targets = [["127.0.0.1", port], ["127.0.0.1", engine_port]]
        targets += [[address, port] for address in host_ipv4_addresses() if address != "127.0.0.1"]

        done = run_code(CONNECT, stdin=json.dumps(targets))

        assert done["status"] == "COMPLETED", done
        report = json.loads(done["stdout"])
        assert report["reached"] == []
        assert len(report["errors"]) == len(targets)
        assert report["interfaces"] == ["lo"]
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
        server.shutdown()
        server.server_close()
    assert_engine_serves(client)


RESOLVE = """
import json, socket
report = {}
try:
    report["resolved"] = str(socket.getaddrinfo("example.com", 80))
except OSError as error:
    report["dns_error"] = type(error).__name__
try:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"\\0" * 12, ("8.8.8.8", 53))
    report["udp"] = "sent"
except OSError as error:
    report["udp_error"] = error.errno
print(json.dumps(report))
"""


def test_no_dns_and_no_udp_out(run_code):
    done = run_code(RESOLVE)

    assert done["status"] == "COMPLETED", done
    report = json.loads(done["stdout"])
    assert "resolved" not in report and "dns_error" in report, report
    assert "udp" not in report, report


LISTEN = """
import socket, sys
port = int(sys.stdin.read())
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", port))
server.listen()
server.settimeout(1.5)
try:
    connection, peer = server.accept()
    print("accepted", peer)
except TimeoutError:
    print("nobody came")
"""


def test_a_listening_socket_inside_is_unreachable_and_gone_after(client):
    port = free_port()
    execution_id = submit(client, LISTEN, str(port))
    program = wait_for(lambda: [p for p in program_processes() if listening_in_netns(p.pid, port)], 10, "the listener")

    for address in ["127.0.0.1", *host_ipv4_addresses()]:
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=1).close()
    done = wait_terminal(client, execution_id)

    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == "nobody came\n"
    assert_all_gone(program)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert_engine_serves(client)


# ---------------------------------------------------------------- processes and privileges

WHO_AM_I = """
import ctypes, json, os, time
libc = ctypes.CDLL(None, use_errno=True)
report = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups()}
report["caps"] = {line.split(":")[0]: line.split()[1] for line in open("/proc/self/status") if line.startswith("Cap")}
try:
    os.setuid(0)
    report["setuid0"] = "allowed"
except OSError as error:
    report["setuid0"] = error.errno
report["unshare_user"] = libc.unshare(0x10000000)
report["unshare_mount"] = libc.unshare(0x00020000)
print(json.dumps(report), flush=True)
time.sleep(1)
"""


def test_a_run_is_an_unprivileged_user_inside_and_out(app, client):
    execution_id = submit(client, WHO_AM_I)
    wait_for(program_processes, 10, "the program's process")
    owners = {(p.uids(), p.gids()) for p in run_processes()}
    done = wait_terminal(client, execution_id)

    assert done["status"] == "COMPLETED", done
    report = json.loads(done["stdout"])
    assert (report["uid"], report["euid"], report["gid"]) == (65534, 65534, 65534)
    assert report["setuid0"] != "allowed"
    assert report["unshare_user"] == -1 and report["unshare_mount"] == -1
    assert set(report["caps"].values()) == {"0000000000000000"}
    assert len(owners) == 1, owners
    uids, gids = owners.pop()
    assert len(set(uids)) == 1 and uids.real in slot_uids(app), uids
    assert len(set(gids)) == 1 and gids.real == uids.real, gids


PIDS = """
import json, os, sys
engine = int(sys.stdin.read())
report = {"pid": os.getpid(), "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
try:
    os.kill(engine, 0)
    report["engine"] = "signalable"
except ProcessLookupError:
    report["engine"] = "absent"
except PermissionError:
    report["engine"] = "visible"
report["init"] = open("/proc/1/cmdline", "rb").read().split(b"\\0")[0].decode()
print(json.dumps(report))
"""


def test_a_run_has_its_own_pid_namespace(app, run_code):
    host_init = Path("/proc/1/cmdline").read_bytes().split(b"\0")[0].decode()

    done = run_code(PIDS, stdin=str(os.getpid()))

    assert done["status"] == "COMPLETED", done
    report = json.loads(done["stdout"])
    assert report["engine"] == "absent"
    assert os.getpid() not in report["pids"]
    assert report["pid"] < 10 and len(report["pids"]) < 5, report
    assert report["init"] != host_init
    # PID 1 of the run: bubblewrap's init, or the run's init that a fork server cloned
    assert report["init"] == "/usr/bin/python3" if app.config["FORK_SERVER"] else report["init"].endswith("bwrap")


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

MEMORY_BOMB = """
chunks = []
for _ in range(512):
    chunks.append(b"\\1" * (1 << 20))
print("allocated 512 MiB")
"""

MEMORY_BOMB_SPREAD = """
import os, time
children = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        chunks = [b"\\1" * (1 << 20) for _ in range(24)]
        time.sleep(0.5)
        os._exit(0)
    children.append(pid)
print([os.waitpid(pid, 0)[1] for pid in children])
"""


@pytest.mark.parametrize("program", [MEMORY_BOMB, MEMORY_BOMB_SPREAD], ids=["one_process", "eight_processes"])
def test_allocating_past_the_memory_limit_fails_with_memory_limit(client, program):
    engine = psutil.Process()

    done = wait_terminal(client, submit(client, program))

    assert done["status"] == "FAILED", done
    assert done["error"] == "memory_limit", done
    assert "allocated" not in done["stdout"]
    assert engine.is_running() and engine.status() != psutil.STATUS_ZOMBIE
    assert_engine_serves(client)


# ---------------------------------------------------------------- secrets

SNOOP = """
import json, os
report = {"env": dict(os.environ), "environ": {}, "cmdline": {}}
for pid in filter(str.isdigit, os.listdir("/proc")):
    for what in ("environ", "cmdline"):
        try:
            report[what][pid] = open(f"/proc/{pid}/{what}", "rb").read().decode("utf-8", "replace")
        except OSError as error:
            report[what][pid] = f"<{type(error).__name__}>"
report["self"] = str(os.getpid())
fds = []
for entry in os.listdir("/proc/self/fd"):
    try:
        os.fstat(int(entry))
        fds.append(int(entry))
    except OSError:
        pass
report["fds"] = sorted(fds)
print(json.dumps(report))
"""


def test_the_program_sees_no_server_secrets_commands_or_files(client, run_code):
    assert os.environ[CANARY_NAME] == CANARY_VALUE

    done = run_code(SNOOP)

    assert done["status"] == "COMPLETED", done
    assert CANARY_VALUE not in done["stdout"] and CANARY_NAME not in done["stdout"]
    report = json.loads(done["stdout"])
    assert set(report["env"]) <= PROGRAM_ENV_KEYS, report["env"]
    assert "PATH=" in report["environ"][report["self"]]
    for pid, environ in report["environ"].items():
        assert CANARY_VALUE not in environ
    for pid, cmdline in report["cmdline"].items():
        assert cmdline.startswith(("/usr/bin/bwrap\0", "/usr/bin/python3\0")), (pid, cmdline)
        assert "pytest" not in cmdline
    assert report["fds"] == [0, 1, 2]


# ---------------------------------------------------------------- output and time

def test_an_output_flood_is_cut_at_the_limit(client, run_code):
    done = run_code('while True:\n    print("x" * 1000)\n')

    assert done["status"] == "FAILED", {k: v for k, v in done.items() if k != "stdout"}
    assert done["error"] == "output_limit"
    assert done["stdout_truncated"] is True
    assert len(done["stdout"]) == HOSTILE_LIMITS["OUTPUT_LIMIT_BYTES"]
    assert_engine_serves(client)


def test_a_stderr_flood_is_cut_at_the_limit(client, run_code):
    done = run_code('import sys\nwhile True:\n    sys.stderr.write("e" * 1000)\n')

    assert done["status"] == "FAILED", {k: v for k, v in done.items() if k != "stderr"}
    assert done["error"] == "output_limit"
    assert done["stderr_truncated"] is True
    assert len(done["stderr"]) == HOSTILE_LIMITS["OUTPUT_LIMIT_BYTES"]
    assert_engine_serves(client)


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


INVALID_UTF8 = """
import sys, time
sys.stdout.buffer.write(b"ok \\xff\\xfe \\xc3\\x28 \\x00 end\\n")
sys.stdout.buffer.write(b"split \\xc3")
sys.stdout.flush()
time.sleep(0.05)
sys.stdout.buffer.write(b"\\xa9\\n")
sys.stderr.buffer.write(b"bad \\xed\\xa0\\x80 surrogate\\n")
"""


def test_invalid_utf8_output_comes_back_replaced(client, run_code):
    done = run_code(INVALID_UTF8)

    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == "ok \ufffd\ufffd \ufffd( \x00 end\nsplit \u00e9\n"
    assert done["stderr"] == "bad \ufffd\ufffd\ufffd surrogate\n"
    rv = client.get(f"/executions/{done['execution_id']}")
    assert rv.status_code == 200 and rv.json["stdout"] == done["stdout"]
    assert_engine_serves(client)
