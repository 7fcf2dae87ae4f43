"""Warm sandboxes: a run served warm is indistinguishable from a cold one, and each serves one run."""
from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import pytest
from flask import Flask

from app import create_app
from support.client import wait_terminal

PYTHON_SELF_PORTRAIT = """\
import os, resource, sys
print(sys.argv, __name__, __file__, os.getcwd(), os.getuid())
print(sys.path)
print(sorted(name for name in globals() if name != "__loader__"), type(__loader__).__name__)
print(sys.flags.isolated, sys.flags.dont_write_bytecode, type(sys.stdout.buffer).__name__)
print([resource.getrlimit(getattr(resource, name)) for name in ("RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_AS")])
print(sorted(os.environ.items()))
print(sorted(os.listdir(".")), sorted(os.listdir("/")))
print(sys.stdin.read())


def fail():
    raise ValueError("from line 13")


fail()
"""

NODE_SELF_PORTRAIT = """\
const fs = require("fs");
console.log(process.argv.slice(1), require.main === module, __filename, process.cwd(), process.getuid());
console.log(Object.keys(process.env).sort().map((k) => k + "=" + process.env[k]));
console.log(fs.readdirSync(".").sort(), fs.readFileSync(0, "utf8"));
function fail() {
  throw new Error("from line 6");
}
fail();
"""


@pytest.fixture
def config(config):
    """Warm sandboxes serve Python only when its runs do not fork from a fork server."""
    return {**config, "FORK_SERVER": False}


@pytest.fixture
def engines(config, tmp_path) -> Iterator[tuple[Flask, Flask]]:
    """Two engines on separate databases: one with a warm pool, one that always starts cold."""
    warm = create_app({**config, "WARM_POOL": {"python": 1, "javascript": 1}})
    cold = create_app({**config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'cold.db'}", "WARM_POOL": {}})
    yield warm, cold
    for app in (warm, cold):
        app.extensions["engine"].runner.shutdown()


def pool_state(app: Flask) -> dict:
    return app.test_client().get("/health/workers").json["warm_pool"]


def wait_ready(app: Flask, language: str, seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = pool_state(app)
        if state["ready"].get(language):
            return state
        time.sleep(0.05)
    raise AssertionError(f"no warm {language} sandbox ready after {seconds} s: {pool_state(app)}")


def run_on(app: Flask, language: str, source: str, stdin: str = "") -> dict:
    client = app.test_client()
    rv = client.post("/executions", json={"language": language, "source_code": source, "stdin": stdin})
    assert rv.status_code == 202, rv.json
    return wait_terminal(client, rv.json["execution_id"])


def run_warm(app: Flask, language: str, source: str, stdin: str = "") -> dict:
    """Run source on a warm sandbox, proving from the pool's counters that it was one."""
    hits = wait_ready(app, language)["hits"]
    done = run_on(app, language, source, stdin)
    assert pool_state(app)["hits"] == hits + 1, "the run did not take a warm sandbox"
    return done


def test_a_warm_python_run_is_indistinguishable_from_a_cold_one(engines):
    warm_app, cold_app = engines

    warm = run_warm(warm_app, "python", PYTHON_SELF_PORTRAIT, stdin="the input")
    cold = run_on(cold_app, "python", PYTHON_SELF_PORTRAIT, stdin="the input")

    assert warm["status"] == cold["status"] == "FAILED"
    assert warm["exit_code"] == cold["exit_code"] == 1
    assert warm["stdout"] == cold["stdout"]
    # the traceback, line numbers and all, with no frame of the bootstrap
    assert warm["stderr"] == cold["stderr"]
    assert 'File "/box/main.py", line 13, in fail' in warm["stderr"]
    assert "<string>" not in warm["stderr"]


def test_a_warm_javascript_run_sees_what_a_cold_one_sees(engines):
    warm_app, cold_app = engines

    warm = run_warm(warm_app, "javascript", NODE_SELF_PORTRAIT, stdin="the input")
    cold = run_on(cold_app, "javascript", NODE_SELF_PORTRAIT, stdin="the input")

    assert warm["exit_code"] == cold["exit_code"] == 1
    assert warm["stdout"] == cold["stdout"]
    # node's own frames below the program differ; the learner's part does not
    learner_part = [line for line in cold["stderr"].splitlines() if "node:internal" not in line and "[eval]" not in line]
    assert [line for line in warm["stderr"].splitlines() if "node:internal" not in line and "[eval]" not in line] == learner_part
    assert "/box/main.js:6" in warm["stderr"]


def test_a_warm_sandbox_serves_one_run_and_never_sees_another(engines):
    warm_app, _ = engines
    plant = "import os\nopen('/box/left.txt', 'w').write('secret')\nopen('/tmp/left.txt', 'w').write('secret')\nprint(os.getpid())"
    look = "import os\nprint(os.path.exists('/box/left.txt'), os.path.exists('/tmp/left.txt'), sorted(os.listdir('/box')))"

    first = run_warm(warm_app, "python", plant)
    second = run_warm(warm_app, "python", look)

    assert first["status"] == "COMPLETED", first
    assert second["stdout"] == "False False ['main.py']\n"


def test_the_pool_refills_and_reports_itself(engines):
    warm_app, _ = engines
    before = wait_ready(warm_app, "python")

    for _ in range(3):
        assert run_warm(warm_app, "python", "print('hi')")["stdout"] == "hi\n"

    after = wait_ready(warm_app, "python")
    assert after["hits"] == before["hits"] + 3
    assert after["sizes"] == {"python": 1, "javascript": 1}
    assert after["idle_rss_bytes"] > 0


def test_a_run_with_other_limits_than_the_pool_was_started_with_starts_cold(engines):
    warm_app, _ = engines
    before = wait_ready(warm_app, "python")
    deadline = time.monotonic() + 20
    while before["ready"]["python"] < before["sizes"]["python"]:
        assert time.monotonic() < deadline, f"the pool never filled: {before}"
        time.sleep(0.05)
        before = pool_state(warm_app)
    with warm_app.app_context():
        # the limits of queued runs are fixed when they are queued: change the defaults in between
        warm_app.config["RUN_MEMORY_BYTES"] = 128 * 1024 * 1024
    done = run_on(warm_app, "python", "import resource; print('ok')")
    assert done["stdout"] == "ok\n"
    assert done["limits"]["memory_bytes"] == 128 * 1024 * 1024
    after = pool_state(warm_app)
    assert after["hits"] == before["hits"]
    # the sandboxes that fit the default limits stay ready for the runs that have them
    assert after["ready"]["python"] == before["ready"]["python"], (before, after)


HOSTILE = {
    "fork_bomb": ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", {"FAILED", "TIMEOUT"}, None),
    "memory_bomb": ("x = []\nwhile True:\n    x.append(b'\\1' * (1 << 20))\n", {"FAILED"}, "memory_limit"),
    "output_flood": ("while True:\n    print('x' * 1000)\n", {"FAILED"}, "output_limit"),
    "sleeper": ("import time\ntime.sleep(60)\n", {"TIMEOUT"}, "timeout"),
}


def sandbox_processes(app: Flask) -> list[psutil.Process]:
    """This engine's sandboxed descendants (the engine adopts orphans, so none escape this view)."""
    base = int(app.config["SANDBOX_UID_BASE"])
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            # a zombie holds nothing but its pid: one another engine of this test process left
            # (this process is the sandboxes' subreaper) is not this engine's leftover
            if base <= process.uids().real < base + 10_000 and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_programs_are_contained_in_a_warm_sandbox_too(config, name):
    # warm sandboxes, not the fork server, which would serve these Python runs otherwise
    app = create_app({**config, "WARM_POOL": {"python": 1}, "FORK_SERVER": False, "RUN_PROCESSES": 32, "RUN_MEMORY_BYTES": 64 * 1024 * 1024})
    try:
        source, statuses, error = HOSTILE[name]
        done = run_warm(app, "python", source)
        assert done["status"] in statuses, done
        if error:
            assert done["error"] == error, done
        # afterwards the only sandboxed processes left are idle warm ones: three per sandbox
        # (bubblewrap, the sandbox's init, the waiting interpreter)
        deadline = time.monotonic() + 10
        while len(sandbox_processes(app)) > 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sandbox_processes(app)) <= 3, sandbox_processes(app)
        assert run_on(app, "python", "print('still fine')")["stdout"] == "still fine\n"
    finally:
        app.extensions["engine"].runner.shutdown()
