"""Hostile programs against the filesystem and the run's identity: the engine's files, what a run leaves behind, disks, users, pid namespaces, secrets.

Every test runs twice (tests/support/hostile.py's config): with runs forked from a fork server and cold."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from support.client import wait_terminal
from support.hostile import (  # noqa: F401 (config is a fixture)
    CANARY_NAME,
    CANARY_VALUE,
    HOSTILE_LIMITS,
    PROGRAM_ENV_KEYS,
    MiB,
    assert_engine_serves,
    config,
    program_processes,
    run_processes,
    slot_uids,
    submit,
    wait_for,
)

from app.sandbox.isolation import NPROC_SLACK

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
