"""POST /diagnostics: real linters in the real sandbox, positions in UTF-16 columns, and no 500 whatever the input."""
from __future__ import annotations

import time

import psutil
import pytest

from app.sandbox import Language, Limits, Sandbox
from app.sandbox.lint_output import Diagnostic, Positions, parse_ruff
from app.sandbox.lint_pool import LintPool
from app.sandbox.linters import FAILED, TIMEOUT, Linter, lint


@pytest.fixture
def config(config):
    config.update(RUNNER_ENABLED=False)
    return config


def check(client, language: str, source: str) -> dict:
    rv = client.post("/diagnostics", json={"language": language, "source_code": source})
    assert rv.status_code == 200, rv.json
    return rv.json


def test_a_python_syntax_error_after_an_emoji_is_placed_in_utf16_columns(client):
    # "😀" is one character, four UTF-8 bytes and two UTF-16 units: the error is at unit 14
    answer = check(client, "python", 's = "😀"; x = (1,\n')
    assert answer["status"] == "ok" and answer["tool"] == "ruff"
    first = answer["diagnostics"][0]
    assert first["severity"] == "error" and first["source"] == "ruff"
    assert first["line"] >= 1 and first["code"] is None
    answer = check(client, "python", 'x = "😀😀"; import os\n')
    unused = next(d for d in answer["diagnostics"] if d["code"] == "F401")
    # "os": 17 characters in, 19 UTF-16 units in
    assert (unused["line"], unused["column"], unused["end_column"]) == (1, 20, 22)
    assert unused["severity"] == "warning"


def test_python_undefined_names_are_errors(client):
    answer = check(client, "python", "print(undefined_name)\n")
    assert [(d["code"], d["severity"], d["line"], d["column"]) for d in answer["diagnostics"]] == [("F821", "error", 1, 7)]


def test_javascript_byte_offsets_become_utf16_columns(client):
    answer = check(client, "javascript", 'const x = "😀😀"; debugger;\n')
    assert answer["status"] == "ok" and answer["tool"] == "oxlint"
    debugger = next(d for d in answer["diagnostics"] if "no-debugger" in (d["code"] or ""))
    # "debugger;" starts 18 UTF-16 units in (22 bytes, 16 characters)
    assert (debugger["line"], debugger["column"], debugger["end_column"]) == (1, 19, 28)
    broken = check(client, "javascript", "function f( {\n")
    assert any(d["severity"] == "error" for d in broken["diagnostics"])


def test_cpp_errors_come_from_the_compiler_in_utf16_columns(client):
    answer = check(client, "cpp", 'int main() {\n  const char* s = "😀😀"; int x = ;\n}\n')
    assert answer["tool"] == "g++" and answer["status"] == "ok"
    error = answer["diagnostics"][0]
    # the ';' is at byte 38 of the line, UTF-16 unit 34
    assert (error["line"], error["column"], error["severity"]) == (2, 35, "error")
    assert check(client, "cpp", "int main() { return 0; }\n")["diagnostics"] == []


def test_java_errors_come_from_javac(client):
    answer = check(client, "java", 'public class Main {\n  public static void main(String[] a) {\n    String s = "😀😀"; int x = ;\n  }\n}\n')
    assert answer["tool"] == "javac" and answer["status"] == "ok"
    assert (answer["diagnostics"][0]["line"], answer["diagnostics"][0]["column"]) == (3, 32)


def test_a_multi_file_program_is_checked_with_its_other_files_beside_it(client):
    source = '#include "util.h"\nint main() { return twice(2) == 4 ? 0 : 1; }\n'
    alone = client.post("/diagnostics", json={"language": "cpp", "source_code": source}).json
    assert any("util.h" in item["message"] for item in alone["diagnostics"]), alone
    header = {"util.h": "inline int twice(int x) { return 2 * x; }\n"}
    together = client.post("/diagnostics", json={"language": "cpp", "source_code": source, "files": header}).json
    assert (together["status"], together["diagnostics"]) == ("ok", []), together
    bad = client.post("/diagnostics", json={"language": "cpp", "source_code": source, "files": {"../x.h": ""}})
    assert (bad.status_code, bad.json["error"]) == (422, "invalid_file_name")


def test_bad_requests_are_4xx(client, app):
    rv = client.post("/diagnostics", json={"language": "cobol", "source_code": "x"})
    assert rv.status_code == 422 and rv.json["error"] == "unknown_language"
    assert client.post("/diagnostics", json={"language": "python"}).status_code == 422
    assert client.post("/diagnostics", data="{", content_type="application/json").status_code == 400
    too_big = "x = 1\n" * (app.config["DIAGNOSTICS_SOURCE_MAX_BYTES"] // 6 + 1)
    rv = client.post("/diagnostics", json={"language": "python", "source_code": too_big})
    assert rv.status_code == 413 and rv.json["error"] == "source_code_too_large"


@pytest.mark.parametrize(
    "language, bomb",
    [
        ("python", "x = " + "(" * 30_000 + ")" * 30_000 + "\n"),
        ("python", "x = " + "[" * 60_000 + "\n"),
        ("javascript", "let x = " + "[" * 30_000 + "]" * 30_000 + ";\n"),
        ("javascript", "let x = " + "(" * 60_000 + "\n"),
    ],
    ids=["python-nested", "python-unclosed", "javascript-nested", "javascript-unclosed"],
)
def test_a_linter_bomb_gets_an_answer_quickly_and_never_a_500(client, language, bomb):
    started = time.monotonic()
    answer = check(client, language, bomb)
    # a crash, a stack overflow or a timeout is an empty answer that says so
    assert answer["status"] in {"ok", "failed", "timeout"}
    if answer["status"] != "ok":
        assert answer["diagnostics"] == []
    # bounded by the linter's limits (2 s of wall time), not by the input
    assert time.monotonic() - started < 15


class TestMissingTool:
    @pytest.fixture
    def config(self, config):
        config.update(DIAGNOSTICS_RUFF_PATH="/nonexistent/ruff")
        return config

    def test_a_missing_linter_is_an_empty_answer_that_says_so(self, client):
        assert check(client, "python", "x = (\n") == {"diagnostics": [], "status": "unavailable", "tool": "ruff", "duration_ms": 0}


def sandboxed(tmp_path) -> Sandbox:
    from app.sandbox import Settings

    return Sandbox(Settings(scratch_dir=str(tmp_path), cgroup_name=""))


def tool(run: tuple[str, ...], timeout: float = 0.5) -> Linter:
    command = Language(name="fake-linter", source_file="main.py", run=run, version_command=("true",))
    return Linter("python", "fake", command, parse_ruff, Limits(timeout_seconds=timeout, cpu_seconds=1))


def test_a_slow_linter_times_out_into_an_empty_answer(tmp_path):
    sandbox = sandboxed(tmp_path)
    result = lint(lambda *args: sandbox.run(*args, slot=2090), tool(("/bin/sleep", "10")), "x = 1\n")
    assert (result.status, result.diagnostics) == (TIMEOUT, [])
    assert result.duration_ms < 5000


def test_a_crashing_linter_is_an_empty_answer(tmp_path):
    sandbox = sandboxed(tmp_path)
    crash = tool(("/bin/sh", "-c", "echo '[{garbage'; kill -SEGV $$"))
    assert lint(lambda *args: sandbox.run(*args, slot=2091), crash, "x\n").status == FAILED
    garbage = tool(("/bin/sh", "-c", "echo 'not json'"))
    assert lint(lambda *args: sandbox.run(*args, slot=2091), garbage, "x\n").status == FAILED


def test_positions_count_utf16_units():
    positions = Positions("a😀b\n😀😀x\n")
    assert positions.from_characters(1, 3) == (1, 4)
    assert positions.from_line_bytes(2, 9) == (2, 5)
    # byte 10 is "x": line 2 starts at byte 7, after "a😀b\n"
    assert positions.from_offset(7 + 8) == (2, 5)
    assert positions.from_offset(10_000) == (3, 1)
    # past the end of the source: the column clamps to where a line there would start
    assert positions.from_characters(40, 2) == (40, 1)


# pre-started linter sandboxes (app/sandbox/lint_pool.py)


def wait_ready(client, language: str, starts: int = 0, seconds: float = 20) -> dict:
    """/health's view of the pre-started linter sandboxes, once language has one ready and at least
    `starts` were started."""
    deadline = time.monotonic() + seconds
    while True:
        warm = client.get("/health").json["diagnostics"]["warm"]
        if warm and warm["ready"].get(language, 0) >= 1 and warm["starts"] >= starts:
            return warm
        assert time.monotonic() < deadline, warm
        time.sleep(0.02)


@pytest.mark.parametrize("language, source, code", [("python", "import os\n", "F401"), ("javascript", "debugger;\n", "eslint(no-debugger)")])
def test_a_check_is_answered_by_a_pre_started_sandbox_used_once(client, language, source, code):
    # the first check of a process starts the pool (and may itself start cold)
    check(client, language, source)
    before = wait_ready(client, language)
    answer = check(client, language, source)
    assert answer["status"] == "ok" and [d["code"] for d in answer["diagnostics"]] == [code]
    # the sandbox that answered is ended and another started in its place: one check per sandbox
    after = wait_ready(client, language, starts=before["starts"] + 1)
    assert after["hits"] == before["hits"] + 1
    assert after["ready"][language] <= after["per_language"]


@pytest.mark.parametrize(
    "language, bomb",
    [("python", "x = " + "(" * 30_000 + ")" * 30_000 + "\n"), ("javascript", "let x = " + "[" * 30_000 + "]" * 30_000 + ";\n")],
    ids=["python", "javascript"],
)
def test_a_linter_bomb_in_a_pre_started_sandbox_is_an_empty_answer_and_the_pool_recovers(client, language, bomb):
    check(client, language, "x = 1\n")
    before = wait_ready(client, language)
    answer = check(client, language, bomb)
    assert answer["status"] in {"ok", "failed", "timeout"}
    if answer["status"] != "ok":
        assert answer["diagnostics"] == []
    assert wait_ready(client, language)["hits"] == before["hits"] + 1
    # the next check gets a fresh sandbox and a real answer
    assert check(client, language, "x = (\n" if language == "python" else "let = ;\n")["diagnostics"]


class TestPoolTurnedOff:
    @pytest.fixture
    def config(self, config):
        config.update(DIAGNOSTICS_WARM_SANDBOXES=0)
        return config

    def test_checks_start_cold_and_health_says_so(self, client):
        assert check(client, "python", "import os\n")["diagnostics"][0]["code"] == "F401"
        assert client.get("/health").json["diagnostics"] == {
            "enabled": False, "started": False, "cold_slots_machine_wide": 2, "warm": None,
        }


def pool_of(sandbox: Sandbox, tmp_path, linter: Linter) -> LintPool:
    from app.slots import SlotPool

    pool = LintPool(sandbox, SlotPool(tmp_path / "slots", 1, first=2092), {"python": linter}, per_language=1)
    pool.start()
    return pool


def take_when_ready(pool: LintPool, language: str = "python"):
    deadline = time.monotonic() + 20
    while (ready := pool.take(language)) is None:
        assert time.monotonic() < deadline, pool.describe()
        time.sleep(0.02)
    return ready


def test_a_pre_started_linter_that_hangs_or_crashes_is_an_empty_answer(tmp_path):
    sandbox = sandboxed(tmp_path)
    for warm_run, status in [(("/bin/sleep", "10"), TIMEOUT), (("/bin/sh", "-c", "cat; kill -SEGV $$"), FAILED)]:
        hostile = tool(warm_run)
        hostile = Linter("python", "fake", hostile.command, parse_ruff, hostile.limits, warm_command=hostile.command)
        pool = pool_of(sandbox, tmp_path, hostile)
        try:
            ready = take_when_ready(pool)
            try:
                result = lint(lambda *args, pool=pool, ready=ready: pool.run(ready, b"x = 1\n"), hostile, "x = 1\n")
            finally:
                pool.finished(ready)
            assert (result.status, result.diagnostics) == (status, [])
            # a hostile check takes its sandbox with it; the pool starts another
            pool.finished(take_when_ready(pool))
        finally:
            pool.shutdown()
        assert pool.describe()["ready"] == {"python": 0}
        if sandbox.slot_user(2092) is not None:
            # shutdown ended every sandbox it had started: nothing runs as the slot's uid
            assert not [p for p in psutil.process_iter(["uids"]) if p.info["uids"].real == sandbox.slot_user(2092)]


def test_each_check_gets_a_sandbox_of_its_own(tmp_path):
    sandbox = sandboxed(tmp_path)
    # a linter that leaves a file and reports what it found: a second check in the same sandbox would see it
    run = ("/bin/sh", "-c", "cat > main.py; ls /tmp; touch /tmp/left-behind")
    spy = Linter("python", "spy", tool(run).command, lambda out, err, src: [out], warm_command=tool(run).command)
    pool = pool_of(sandbox, tmp_path, spy)
    try:
        seen = []
        for _ in range(2):
            ready = take_when_ready(pool)
            try:
                seen.append(pool.run(ready, b"x\n").stdout)
            finally:
                pool.finished(ready)
        assert seen == ["", ""]
    finally:
        pool.shutdown()


SAME_ANSWER_SOURCES = {
    "python": ['s = "😀"; x = (1,\n', 'x = "😀😀"; import os\n', "def f(:\n  pass\nx = [\n", "import sys, os\nprint(undefined_name)\n", ""],
    "javascript": ['const x = "😀😀"; debugger;\n', "function f( {\n", "let a = 1;\nif (a = 2) { debugger }\n", ""],
}


def by_position(diagnostic: Diagnostic) -> tuple:
    return diagnostic.line, diagnostic.column, diagnostic.code or ""


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_a_pre_started_language_server_answers_as_the_cold_command_line_tool(tmp_path, language):
    # the language servers are other front ends of the same tools: positions, codes, severities and
    # messages must not depend on which one answered
    from app.sandbox.linters import linters
    from app.slots import SlotPool

    sandbox = sandboxed(tmp_path)
    linter = linters()[language]
    pool = LintPool(sandbox, SlotPool(tmp_path / "slots", 1, first=2092), {language: linter}, per_language=1)
    pool.start()
    try:
        for source in SAME_ANSWER_SOURCES[language]:
            cold = lint(lambda *args: sandbox.run(*args, slot=2091), linter, source)
            ready = take_when_ready(pool, language)
            try:
                warm = lint(lambda *args, ready=ready, code=source: pool.run(ready, code.encode()), linter, source, linter.warm_parse())
            finally:
                pool.finished(ready)
            assert (warm.status, warm.tool) == (cold.status, cold.tool) == ("ok", linter.tool), (source, warm, cold)
            assert sorted(warm.diagnostics, key=by_position) == sorted(cold.diagnostics, key=by_position), source
    finally:
        pool.shutdown()


def test_a_check_that_finds_no_sandbox_ready_waits_for_the_one_being_started(tmp_path):
    sandbox = sandboxed(tmp_path)
    echo = tool(("/bin/cat",))
    echo = Linter("python", "echo", echo.command, parse_ruff, echo.limits, warm_command=echo.command)
    pool = pool_of(sandbox, tmp_path, echo)
    try:
        first = take_when_ready(pool)
        # the pool's one slot is taken: nothing can be started until the first is handed back
        assert pool.take("python", wait_seconds=0.05) is None
        pool.finished(first)
        second = pool.take("python", wait_seconds=20)
        assert second is not None and second is not first
        pool.finished(second)
        assert pool.describe()["waits"] == 1
    finally:
        pool.shutdown()


def test_an_idle_pool_ends_its_sandboxes_and_the_next_check_brings_them_back(tmp_path):
    from app.slots import SlotPool

    sandbox = sandboxed(tmp_path)
    echo = tool(("/bin/cat",))
    echo = Linter("python", "echo", echo.command, parse_ruff, echo.limits, warm_command=echo.command)
    pool = LintPool(sandbox, SlotPool(tmp_path / "slots", 1, first=2092), {"python": echo}, per_language=1, idle_seconds=0.5)
    pool.start()
    try:
        pool.finished(take_when_ready(pool))
        uid = sandbox.slot_user(2092)

        def slot_processes() -> list:
            return [p for p in psutil.process_iter(["uids"]) if uid is not None and p.info["uids"].real == uid]

        deadline = time.monotonic() + 20
        while pool.describe()["ready"]["python"] or pool.describe()["starts"] < 2 or slot_processes():
            # the replacement of the check's sandbox is started, then ended (every process of it)
            # once the pool is idle
            assert time.monotonic() < deadline, (pool.describe(), slot_processes())
            time.sleep(0.05)
        ready = pool.take("python", wait_seconds=20)
        assert ready is not None
        pool.finished(ready)
    finally:
        pool.shutdown()


# a language server that answers its handshake and warm-up, then misbehaves on the check's document
FAKE_SERVER = r"""
import json, sys, time
def read():
    length = 0
    while (line := sys.stdin.buffer.readline().strip()):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(sys.stdin.buffer.read(length))
def send(message):
    body = json.dumps(message).encode()
    sys.stdout.buffer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    sys.stdout.buffer.flush()
def diagnostics(uri):
    send({"jsonrpc": "2.0", "method": "textDocument/publishDiagnostics", "params": {"uri": uri, "diagnostics": []}})
while True:
    message = read()
    if message.get("method") == "initialize":
        send({"jsonrpc": "2.0", "id": message["id"], "result": {"capabilities": {}}})
    elif message.get("method") == "textDocument/didOpen":
        uri = message["params"]["textDocument"]["uri"]
        if "warm-up" in uri:
            diagnostics(uri)
            if sys.argv[1] == "deaf":
                # reads nothing more: the check's document cannot be sent whole
                time.sleep(60)
        elif sys.argv[1] == "hang":
            time.sleep(60)
        elif sys.argv[1] == "crash":
            sys.exit(3)
        elif sys.argv[1] == "flood":
            send({"jsonrpc": "2.0", "method": "window/logMessage", "params": {"message": "x" * 2_000_000}})
        elif sys.argv[1] == "garbage":
            sys.stdout.buffer.write(b"Content-Length: 5\r\n\r\n{not}")
            sys.stdout.buffer.flush()
        elif sys.argv[1] == "fine":
            diagnostics(uri)
"""


def test_a_pre_started_language_server_that_hangs_crashes_floods_or_babbles_is_an_empty_answer(tmp_path):
    from app.sandbox.linters import LSP, OK

    sandbox = sandboxed(tmp_path)
    # 16,000 emoji: 64 KB of UTF-8, three times that as JSON escapes; more than a pipe holds
    big = "x = '" + "😀" * 16_000 + "'\n"
    for behaviour, status in [("fine", OK), ("hang", TIMEOUT), ("crash", FAILED), ("flood", FAILED), ("garbage", FAILED), ("deaf", TIMEOUT)]:
        fake = tool(("/usr/bin/python3", "-c", FAKE_SERVER, behaviour))
        fake = Linter("python", "fake", fake.command, parse_ruff, fake.limits, warm_command=fake.command, warm_protocol=LSP)
        pool = pool_of(sandbox, tmp_path, fake)
        try:
            ready = take_when_ready(pool)
            try:
                result = lint(lambda *args, pool=pool, ready=ready: pool.run(ready, big.encode()), fake, big, fake.warm_parse())
            finally:
                pool.finished(ready)
            assert (behaviour, result.status, result.diagnostics) == (behaviour, status, [])
            assert result.duration_ms < 5000
        finally:
            pool.shutdown()
