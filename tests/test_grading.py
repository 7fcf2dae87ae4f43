"""Graded runs end to end: suites, verdicts, hidden cases kept hidden, forged markers, a supervisor killed, limits, roles."""
from __future__ import annotations

import json
import time

import jwt
import pytest

from support.client import wait_terminal
from support.sse import parse_events

SECRET_IN = "SECRET-INPUT-4242"
SECRET_OUT = "SECRET-EXPECTED-9191"
JWT_SECRET = "test-secret-that-is-long-enough-for-hs256!"

# one program that shows every verdict, chosen by its input
BEHAVIOURS = """\
import sys
word = sys.stdin.readline().strip()
if word == "sum":
    a, b = map(int, sys.stdin.readline().split())
    print(a + b)
elif word == "wrong":
    print("nope")
elif word == "crash":
    raise ValueError("broken on purpose")
elif word == "loop":
    while True:
        pass
elif word == "memory":
    hog = bytearray(400 * 1024 * 1024)
    hog[::4096] = b"x" * len(hog[::4096])
    print(len(hog))
elif word == "flood":
    while True:
        print("x" * 1000)
"""


@pytest.fixture
def config(config):
    config.update(WARM_POOL={}, OUTPUT_LIMIT_BYTES=10_000)
    return config


def suite(client, cases: list[dict], headers: dict | None = None, **fields: object) -> str:
    rv = client.post("/test-suites", json={"test_cases": cases, **fields}, headers=headers or {})
    assert rv.status_code == 201, rv.json
    return rv.json["test_suite_id"]


def grade(client, source: str, suite_id: str, language: str = "python", headers: dict | None = None) -> dict:
    rv = client.post(
        "/executions", json={"language": language, "source_code": source, "test_suite_id": suite_id}, headers=headers or {}
    )
    assert rv.status_code == 202, rv.json
    assert rv.json["kind"] == "grade" and rv.json["test_suite_id"] == suite_id and rv.json["grade"] is None
    return wait_terminal(client, rv.json["execution_id"], 60)


def test_every_verdict_and_the_overall_worst(client):
    suite_id = suite(
        client,
        [
            {"name": "sum", "stdin": "sum\n2 3\n", "expected_output": "5\n", "points": 2},
            {"name": "wrong", "stdin": "wrong\n", "expected_output": "yes\n"},
            {"name": "crash", "stdin": "crash\n", "expected_output": ""},
            {"name": "loop", "stdin": "loop\n", "expected_output": ""},
            {"name": "memory", "stdin": "memory\n", "expected_output": ""},
            {"name": "flood", "stdin": "flood\n", "expected_output": ""},
        ],
        time_limit_ms=1000,
        memory_limit_bytes=128 * 1024 * 1024,
    )
    done = grade(client, BEHAVIOURS, suite_id)
    assert done["status"] == "COMPLETED" and done["error"] is None, done
    result = done["grade"]
    assert [t["verdict"] for t in result["tests"]] == [
        "PASSED", "WRONG_ANSWER", "RUNTIME_ERROR", "TIME_LIMIT", "MEMORY_LIMIT", "OUTPUT_LIMIT",
    ], result
    assert result["verdict"] == "RUNTIME_ERROR"
    assert (result["score"], result["max_score"], result["passed"], result["total"], result["complete"]) == (2, 7, 1, 6, True)
    passed, wrong, crash = result["tests"][:3]
    assert passed["actual_output"] == "5\n" and passed["points"] == 2 and passed["time_ms"] >= 0 and passed["memory_bytes"] > 0
    assert wrong["diff"] == {"line": 1, "expected": "yes", "actual": "nope"}
    assert "ValueError: broken on purpose" in crash["message"]
    assert len(result["tests"][5]["actual_output"]) <= 10_000


def test_a_traceback_reads_as_in_a_cold_run(client, run_code):
    source = "def f():\n    raise KeyError('k')\nf()\n"
    cold = run_code(source)
    suite_id = suite(client, [{"name": "one", "stdin": "", "expected_output": ""}])
    graded = grade(client, source, suite_id)["grade"]["tests"][0]
    assert graded["verdict"] == "RUNTIME_ERROR"
    assert graded["message"].endswith(cold["stderr"].strip()), (graded["message"], cold["stderr"])


def test_a_syntax_error_reads_as_in_a_cold_run_in_every_case(client, run_code):
    # the supervisor compiles the program once (it never runs it); each case reports the error
    source = "print('fine')\nif True print('broken')\n"
    cold = run_code(source)
    suite_id = suite(client, [{"name": n, "stdin": "", "expected_output": "fine"} for n in ("a", "b")])
    tests = grade(client, source, suite_id)["grade"]["tests"]
    assert [t["verdict"] for t in tests] == ["RUNTIME_ERROR", "RUNTIME_ERROR"]
    assert "SyntaxError" in cold["stderr"] and 'File "/box/main.py", line 2' in cold["stderr"]
    for test in tests:
        assert test["message"].endswith(cold["stderr"].strip()), (test["message"], cold["stderr"])


def test_every_case_starts_from_a_fresh_interpreter_as_a_cold_run_does(client, run_code):
    # what one case changes in the interpreter (module state, sys.modules, __main__) is not in the
    # next; the supervisor's own modules are not imported in a case, as they are not in a cold run
    source = (
        "import sys\n"
        "seen = getattr(sys, 'seen_by_a_case', 0)\n"
        "sys.seen_by_a_case = 1\n"
        "import json\n"
        "extra = sorted(name for name in ('ctypes', '_socket', 'select', 'resource') if name in sys.modules)\n"
        "import os, signal\n"
        "fds = sorted(os.listdir('/proc/self/fd'))\n"
        "print(seen, extra, sys.argv, __name__, sys.modules['__main__'].__file__, fds, signal.getsignal(signal.SIGXCPU))\n"
    )
    expected = run_code(source)["stdout"]
    # no descriptor of the supervisor's (3 is listdir's own), the CPU-limit signal at its default
    assert expected.startswith("0 [] ['main.py'] __main__ /box/main.py ['0', '1', '2', '3'] "), expected
    suite_id = suite(client, [{"name": n, "stdin": "", "expected_output": expected} for n in "abc"], checker={"type": "exact"})
    tests = grade(client, source, suite_id)["grade"]["tests"]
    assert [t["verdict"] for t in tests] == ["PASSED"] * 3, [t["actual_output"] for t in tests]


def test_modules_a_case_writes_are_never_imported_by_the_supervisor(client):
    # the supervisor's own imports (os.wait4 imports resource from C) never look in the case's folder:
    # a module there that ended whatever imported it would end the supervisor, and the case with it
    names = ("resource", "json", "select", "signal", "socket", "gc", "atexit", "threading", "encodings_extra")
    source = (
        "import os\n"
        f"for name in {names!r}:\n"
        "    with open(name + '.py', 'w') as file:\n"
        "        file.write('import os\\nos._exit(3)\\n')\n"
        "print('ok')\n"
    )
    suite_id = suite(client, [{"name": n, "stdin": "", "expected_output": "ok"} for n in "abc"])
    tests = grade(client, source, suite_id)["grade"]["tests"]
    assert [t["verdict"] for t in tests] == ["PASSED"] * 3, [t["message"] for t in tests]


def test_a_case_finds_its_own_folder_first_on_sys_path_as_a_cold_run_does(client, run_code):
    source = "import os, sys\nprint(sys.path[0] == os.getcwd())\n"
    assert run_code(source)["stdout"] == "True\n"
    graded = grade(client, source, suite(client, [{"name": "one", "stdin": "", "expected_output": "True"}]))["grade"]
    assert graded["tests"][0]["verdict"] == "PASSED", graded


def test_hidden_cases_never_show_their_input_or_output(client, app, capfd):
    # the program looks for the hidden data wherever it could reach before its case runs
    source = f"""\
import os, sys
data = sys.stdin.read()
seen = []
for top in ("/box", "/tmp", "/dev/shm"):
    for where, _, files in os.walk(top):
        for name in files:
            try:
                seen.append(open(os.path.join(where, name), "rb").read())
            except OSError:
                pass
seen.append(open("/proc/self/environ", "rb").read())
try:
    os.listdir(f"/proc/{{os.getppid()}}/fd")
    print("supervisor fds readable")
except OSError:
    pass
# built here: the program's own source (in /box) must not hold the secret itself
marker = ("SECRET-EXPECTED-" + "{SECRET_OUT.rsplit('-', 1)[1]}").encode()
leaked = any(marker in blob for blob in seen)
print("LEAK" if leaked else "clean")
print(data.strip())
"""
    suite_id = suite(
        client,
        [
            {"name": "visible", "stdin": "hello", "expected_output": "clean\nhello\n"},
            {"name": "secret", "stdin": SECRET_IN, "expected_output": f"clean\n{SECRET_OUT}\n", "hidden": True},
            {"name": "secret2", "stdin": SECRET_IN, "expected_output": f"clean\n{SECRET_IN}\n", "hidden": True},
        ],
    )
    rv = client.post("/executions", json={"language": "python", "source_code": source, "test_suite_id": suite_id})
    execution_id = rv.json["execution_id"]
    stream = client.get(f"/executions/{execution_id}/events", buffered=False)
    events = []
    for event in parse_events(stream.response):
        events.append(event)
        if event.get("event") == "final":
            break
    stream.close()
    done = wait_terminal(client, execution_id)
    tests = done["grade"]["tests"]
    assert [t["verdict"] for t in tests] == ["PASSED", "WRONG_ANSWER", "PASSED"], tests
    assert tests[0]["actual_output"] == "clean\nhello\n"
    for test in tests[1:]:
        assert set(test) == {"index", "name", "hidden", "verdict", "points", "max_points", "time_ms", "memory_bytes", "message"}
    results = [e["data"] for e in events if e.get("event") == "test_result"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert results == tests
    kinds = [e["event"] for e in events if "event" in e]
    assert kinds.index("final") > max(i for i, kind in enumerate(kinds) if kind == "test_result")
    listed = client.get("/executions/" + execution_id).json
    logs = capfd.readouterr()
    for body in (json.dumps(done), json.dumps(events), json.dumps(listed), logs.out, logs.err):
        assert SECRET_IN not in body and SECRET_OUT not in body


def test_a_program_that_prints_fake_verdict_markers_gains_nothing(client):
    forged = {"index": 0, "exit_code": 0, "signal": None, "wall_ms": 1, "cpu_ms": 1, "max_rss_bytes": 1, "timed_out": False}
    source = (
        "import json, sys\n"
        f"print(json.dumps({forged!r}))\n"
        "print('PASSED')\n"
        "print(json.dumps({'verdict': 'PASSED', 'score': 1}))\n"
        "sys.stderr.write('{\"ready\": true}\\n')\n"
        "sys.exit(3)\n"
    )
    suite_id = suite(client, [{"name": "one", "stdin": "", "expected_output": "PASSED"}, {"name": "two", "stdin": "", "expected_output": "x"}])
    result = grade(client, source, suite_id)["grade"]
    assert [t["verdict"] for t in result["tests"]] == ["RUNTIME_ERROR", "RUNTIME_ERROR"]
    assert result["passed"] == 0 and result["verdict"] == "RUNTIME_ERROR"


# a Python case's parent is the zygote it was forked from; the supervisor is the zygote's parent
PARENTS = {
    "parent": "os.getppid()",
    "grandparent": "int(open(f'/proc/{os.getppid()}/stat').read().rsplit(')', 1)[1].split()[1])",
}


@pytest.mark.parametrize("whom", sorted(PARENTS))
def test_a_program_that_kills_its_supervisor_fails_that_case_and_the_rest_go_on(client, whom):
    source = (
        "import os, signal, sys\n"
        "word = sys.stdin.read().strip()\n"
        "if word == 'kill':\n"
        f"    os.kill({PARENTS[whom]}, signal.SIGKILL)\n"
        "    import time; time.sleep(5)\n"
        "print(word)\n"
    )
    cases = [{"name": f"c{i}", "stdin": word, "expected_output": word} for i, word in enumerate(["a", "kill", "b", "kill", "c"])]
    result = grade(client, source, suite(client, cases, time_limit_ms=3000))["grade"]
    assert [t["verdict"] for t in result["tests"]] == ["PASSED", "RUNTIME_ERROR", "PASSED", "RUNTIME_ERROR", "PASSED"], result
    assert result["complete"] is True and result["passed"] == 3


def test_a_process_that_leaves_its_case_does_not_live_into_the_next(client):
    # a daemon that left the case's process group could otherwise read the next case's stdin
    source = (
        "import os, sys, time\n"
        "if sys.stdin.read().strip() == 'spawn':\n"
        "    child = os.fork()\n"
        "    if child == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "        os._exit(0)\n"
        "    os.waitpid(child, 0)\n"
        "    time.sleep(0.2)\n"
        # the case's parent (the process cases are forked from) and its parent (the supervisor)
        "parent = os.getppid()\n"
        "supervisor = int(open(f'/proc/{parent}/stat').read().rsplit(')', 1)[1].split()[1])\n"
        "others = [p for p in os.listdir('/proc') if p.isdigit() and int(p) not in (1, supervisor, parent, os.getpid())]\n"
        "print(len(others))\n"
    )
    cases = [{"name": "spawn", "stdin": "spawn", "expected_output": "1"}, {"name": "look", "stdin": "", "expected_output": "0"}]
    result = grade(client, source, suite(client, cases))["grade"]
    assert [t["verdict"] for t in result["tests"]] == ["PASSED", "PASSED"], result


def test_a_hidden_cases_input_does_not_reach_the_next_case_through_ipc(client):
    # the cases share the sandbox's IPC namespace: what the hidden case stores there must be gone
    source = (
        "import ctypes, os, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.shmat.restype = ctypes.c_void_p\n"
        "word = sys.stdin.read().strip()\n"
        "ident = libc.shmget(4242, 4096, 0o1600 if word else 0o600)\n"
        "if word:\n"
        "    ctypes.memmove(libc.shmat(ident, None, 0), word.encode(), len(word))\n"
        "    print('stored')\n"
        "else:\n"
        "    print('left' if ident >= 0 else 'nothing', ctypes.string_at(libc.shmat(ident, None, 0)).decode() if ident >= 0 else '')\n"
        "mq = libc.mq_open(b'/leak', os.O_RDONLY)\n"
        "print('mq', mq, ctypes.get_errno())\n"
    )
    cases = [
        {"name": "hidden", "stdin": SECRET_IN, "expected_output": "stored", "hidden": True},
        {"name": "visible", "stdin": "", "expected_output": "nothing"},
    ]
    result = grade(client, source, suite(client, cases))["grade"]
    visible = result["tests"][1]
    assert SECRET_IN not in json.dumps(result), result
    assert visible["actual_output"].startswith("nothing"), visible
    # POSIX queues cannot be emptied between cases: the filter refuses them (ENOSYS)
    assert "mq -1 38" in visible["actual_output"], visible


@pytest.mark.parametrize("whom", sorted(PARENTS))
def test_a_program_that_stops_its_supervisor_times_out_and_the_rest_go_on(client, whom):
    # SIGSTOP: the supervisor cannot end the case; the engine's own deadline ends the sandbox
    source = (
        "import os, signal, sys, time\n"
        "word = sys.stdin.read().strip()\n"
        "if word == 'stop':\n"
        f"    os.kill({PARENTS[whom]}, signal.SIGSTOP)\n"
        "    time.sleep(10)\n"
        "print(word)\n"
    )
    cases = [{"name": f"c{i}", "stdin": word, "expected_output": word} for i, word in enumerate(["a", "stop", "b"])]
    result = grade(client, source, suite(client, cases, time_limit_ms=500))["grade"]
    assert [t["verdict"] for t in result["tests"]] == ["PASSED", "TIME_LIMIT", "PASSED"], result


def test_the_suite_time_limit_skips_the_rest_and_says_incomplete(client):
    source = "import time\ntime.sleep(0.5)\nprint('ok')\n"
    cases = [{"name": f"c{i}", "stdin": "", "expected_output": "ok"} for i in range(6)]
    # a case's own limit is generous (a loaded machine may be slow); the suite's stops it
    done = grade(client, source, suite(client, cases, time_limit_ms=2000, total_time_limit_ms=1500))
    result = done["grade"]
    verdicts = [t["verdict"] for t in result["tests"]]
    assert done["status"] == "COMPLETED"
    assert verdicts[0] == "PASSED" and verdicts[-1] == "SKIPPED", verdicts
    assert set(verdicts) <= {"PASSED", "TIME_LIMIT", "SKIPPED"}
    skipped = [t for t in result["tests"] if t["verdict"] == "SKIPPED"]
    assert all("total time limit" in t["message"] and t["time_ms"] is None for t in skipped)
    assert result["complete"] is False and result["verdict"] in ("SKIPPED", "TIME_LIMIT")
    assert result["total"] == 6 and result["passed"] < 6


def test_a_graded_run_can_be_cancelled_while_a_case_runs(client):
    # every case sleeps far longer than the test waits: only the cancel can end it this soon
    source = "import time\nprint('started', flush=True)\ntime.sleep(8)\nprint('ok')\n"
    cases = [{"name": f"c{i}", "stdin": "", "expected_output": "ok"} for i in range(4)]
    suite_id = suite(client, cases, time_limit_ms=10_000, total_time_limit_ms=60_000)
    rv = client.post("/executions", json={"language": "python", "source_code": source, "test_suite_id": suite_id})
    execution_id = rv.json["execution_id"]
    deadline = time.monotonic() + 20
    while client.get(f"/executions/{execution_id}").json["status"] != "RUNNING":
        assert time.monotonic() < deadline, "the graded run never started"
        time.sleep(0.02)
    # the first case is under way (its sandbox started) before the stop
    time.sleep(1.0)
    asked = time.monotonic()
    assert client.post(f"/executions/{execution_id}/cancel").status_code == 202
    done = wait_terminal(client, execution_id, 30)
    assert time.monotonic() - asked < 5, "a cancel waits for no case to end"
    assert (done["status"], done["error"]) == ("FAILED", "cancelled"), done
    result = done["grade"]
    assert result["complete"] is False and result["passed"] == 0
    assert [t["verdict"] for t in result["tests"]] == ["SKIPPED"] * 4
    assert all("cancelled" in t["message"] for t in result["tests"])
    assert client.post(f"/executions/{execution_id}/cancel").status_code == 409


def test_a_compile_error_fails_the_run_and_skips_every_case(client):
    suite_id = suite(client, [{"name": "a", "stdin": "", "expected_output": "1"}, {"name": "b", "stdin": "", "expected_output": "2", "hidden": True}])
    done = grade(client, "int main( {", suite_id, language="cpp")
    assert (done["status"], done["error"]) == ("FAILED", "compile_error")
    assert "error" in done["stderr"]
    result = done["grade"]
    assert [t["verdict"] for t in result["tests"]] == ["SKIPPED", "SKIPPED"]
    assert (result["verdict"], result["complete"], result["passed"]) == ("SKIPPED", False, 0)


ADDERS = {
    "cpp": "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<'\\n';}\n",
    "javascript": 'const [a, b] = require("fs").readFileSync(0, "utf8").trim().split(/\\s+/).map(Number);\nconsole.log(a + b);\n',
    "java": "import java.util.*;\npublic class Main { public static void main(String[] x) { Scanner s = new Scanner(System.in);"
    " System.out.println(s.nextLong() + s.nextLong()); } }\n",
}


@pytest.mark.parametrize("language", sorted(ADDERS))
def test_other_languages_fork_and_exec_each_case(client, language):
    if language not in {entry["name"] for entry in client.get("/languages").json["languages"]}:
        pytest.skip(f"{language} is not installed")
    cases = [{"name": f"c{i}", "stdin": f"{i} {i}", "expected_output": str(2 * i)} for i in range(3)]
    cases.append({"name": "wrong", "stdin": "1 1", "expected_output": "3"})
    done = grade(client, ADDERS[language], suite(client, cases, time_limit_ms=5000), language=language)
    assert done["status"] == "COMPLETED", done
    assert [t["verdict"] for t in done["grade"]["tests"]] == ["PASSED", "PASSED", "PASSED", "WRONG_ANSWER"], done["grade"]


def test_an_exec_case_gets_its_streams_its_cpu_limit_and_default_signals_only(client, run_code):
    # posix_spawn closes nothing by itself: the case's process must hold no descriptor of the
    # supervisor's or the engine's, ignore no signal a cold start does not, and have its own CPU limit
    source = 'for fd in /proc/$$/fd/*; do echo -n "${fd##*/} "; done; echo; ulimit -t; trap -p PIPE XFSZ XCPU; echo end\n'
    cold = run_code(source, language="bash")["stdout"].split("\n")
    assert cold[0].split()[:4] == ["0", "1", "2", "255"] and cold[2:] == ["end", ""], cold
    # the same, but the case's own CPU limit: ceil(2.5 s)
    expected = "\n".join([cold[0], "3", *cold[2:]])
    suite_id = suite(client, [{"name": n, "stdin": "", "expected_output": expected} for n in "ab"], time_limit_ms=2500)
    tests = grade(client, source, suite_id, language="bash")["grade"]["tests"]
    assert [t["verdict"] for t in tests] == ["PASSED", "PASSED"], [t["actual_output"] for t in tests]


def test_a_session_is_graded_and_a_program_checker_judges(client):
    checker = (
        "import sys\n"
        "def section():\n"
        "    return sys.stdin.buffer.read(int(sys.stdin.buffer.readline())).decode()\n"
        "given, expected, actual = section(), section(), section()\n"
        "n = int(given)\n"
        "got = int(actual)\n"
        "if got % n == 0: print(1); print('a multiple')\n"
        "elif got > 0: print(0.5); print('positive at least')\n"
        "else: print(0)\n"
    )
    suite_id = suite(
        client,
        [{"name": "m", "stdin": "3", "expected_output": "", "points": 4}, {"name": "p", "stdin": "7", "expected_output": "", "points": 2}],
        checker={"type": "program", "language": "python", "source_code": checker},
    )
    session = client.post("/code-sessions", json={"language": "python", "source_code": "n = int(input())\nprint(n * 2 if n == 3 else 1)\n"}).json
    rv = client.post(f"/code-sessions/{session['session_id']}/grade", json={"test_suite_id": suite_id})
    assert rv.status_code == 202 and rv.json["kind"] == "grade", rv.json
    result = wait_terminal(client, rv.json["execution_id"], 60)["grade"]
    first, second = result["tests"]
    assert (first["verdict"], first["points"], first["message"]) == ("PASSED", 4, "a multiple")
    assert (second["verdict"], second["points"], second["message"]) == ("WRONG_ANSWER", 1, "positive at least")
    assert (result["score"], result["max_score"], result["complete"]) == (5, 6, True)


def test_bad_suites_and_requests_get_clear_errors(client, config):
    cases = [{"name": "a", "stdin": "", "expected_output": ""}]
    for body, fragment in [
        ({"test_cases": []}, "test_cases"),
        ({"test_cases": cases, "checker": {"type": "regex"}}, "checker.type"),
        ({"test_cases": cases, "checker": {"type": "program", "language": "python"}}, "source_code"),
        ({"test_cases": cases, "checker": {"type": "program", "language": "cobol", "source_code": "x"}}, "cobol"),
        ({"test_cases": cases, "time_limit_ms": 10**9}, "time_limit_ms"),
        ({"test_cases": [{"stdin": "x" * (300 * 1024)}]}, "test_cases.0.stdin"),
        ({"test_cases": cases * 201}, "at most 200"),
        ({"test_cases": [{"stdin": 5}]}, "test_cases.0.stdin"),
    ]:
        rv = client.post("/test-suites", json=body)
        assert rv.status_code in (413, 422), (body, rv.json)
        if rv.status_code == 422:
            assert rv.json["error"] == "invalid_test_suite" and fragment in rv.json["message"], rv.json
    assert client.get("/test-suites/nope").status_code == 404
    rv = client.post("/executions", json={"language": "python", "source_code": "", "test_suite_id": "nope"})
    assert (rv.status_code, rv.json["error"]) == (404, "not_found")
    suite_id = suite(client, cases)
    rv = client.post("/executions", json={"language": "python", "source_code": "", "stdin": "x", "test_suite_id": suite_id})
    assert (rv.status_code, rv.json["error"]) == (422, "validation_error")
    assert client.post("/code-sessions/nope/grade", json={"test_suite_id": suite_id}).status_code == 404


def token(sub: str, **claims: object) -> dict:
    value = jwt.encode({"sub": sub, "exp": int(time.time() + 300), **claims}, JWT_SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {value}"}


def test_with_access_control_only_operators_make_suites_and_see_hidden_cases(config, request):
    from app import create_app

    config.update(AUTH_ENABLED=True, AUTH_JWT_SECRET=JWT_SECRET)
    app = create_app(config)
    request.addfinalizer(app.extensions["engine"].runner.shutdown)
    client = app.test_client()
    learner, operator, listed = token("lea"), token("ops", role="operator"), token("ana", role=["teacher", "operator"])
    cases = [{"name": "v", "stdin": "1", "expected_output": "1"}, {"name": "h", "stdin": SECRET_IN, "expected_output": SECRET_OUT, "hidden": True}]

    assert client.post("/test-suites", json={"test_cases": cases}).status_code == 401
    rv = client.post("/test-suites", json={"test_cases": cases}, headers=learner)
    assert (rv.status_code, rv.json["error"]) == (403, "forbidden")
    assert client.post("/test-suites", json={"test_cases": cases}, headers=token("x", role="learner")).status_code == 403
    suite_id = suite(client, cases, headers=operator)
    suite(client, cases, headers=listed)

    seen = client.get(f"/test-suites/{suite_id}", headers=learner).json
    assert seen["test_cases"][0]["stdin"] == "1"
    assert "stdin" not in seen["test_cases"][1] and "expected_output" not in seen["test_cases"][1]
    assert SECRET_IN not in json.dumps(seen) and SECRET_OUT not in json.dumps(seen)
    full = client.get(f"/test-suites/{suite_id}", headers=operator).json
    assert full["test_cases"][1]["expected_output"] == SECRET_OUT

    session = client.post("/code-sessions", json={"source_code": "print(input())"}, headers=learner).json
    rv = client.post(f"/code-sessions/{session['session_id']}/grade", json={"test_suite_id": suite_id}, headers=learner)
    assert rv.status_code == 202, rv.json
    deadline = time.monotonic() + 60
    while (done := client.get(f"/executions/{rv.json['execution_id']}?wait=10", headers=learner).json)["status"] not in ("COMPLETED", "FAILED", "TIMEOUT"):
        assert time.monotonic() < deadline
    assert [t["verdict"] for t in done["grade"]["tests"]] == ["PASSED", "WRONG_ANSWER"]
    assert SECRET_IN not in json.dumps(done) and SECRET_OUT not in json.dumps(done)


def test_a_javascript_case_past_its_memory_is_memory_limit_and_the_next_cases_run(client):
    # a graded node case runs without the heap flag where the slot has a memory cgroup (the flag
    # costs every start 4-6 ms): the cgroup's OOM kill, not V8's message, must still tell it
    if "javascript" not in {entry["name"] for entry in client.get("/languages").json["languages"]}:
        pytest.skip("javascript is not installed")
    source = (
        'const word = require("fs").readFileSync(0, "utf8").trim();\n'
        'if (word === "hog") { const kept = []; for (;;) kept.push(new Array(1 << 20).fill(7)); }\n'
        "console.log(word.length);\n"
    )
    cases = [
        {"name": "before", "stdin": "ab", "expected_output": "2"},
        {"name": "hog", "stdin": "hog", "expected_output": "3"},
        {"name": "after", "stdin": "abcd", "expected_output": "4"},
    ]
    done = grade(client, source, suite(client, cases, time_limit_ms=10000, memory_limit_bytes=128 * 1024 * 1024), language="javascript")
    tests = done["grade"]["tests"]
    assert [t["verdict"] for t in tests] == ["PASSED", "MEMORY_LIMIT", "PASSED"], tests
    assert done["grade"]["complete"] is True


def test_a_case_runs_its_atexit_callbacks_and_has_no_atexit_module_it_did_not_import(client, run_code):
    # the case's end runs atexit's callbacks through a module the supervisor imported before any
    # fork (an import at every case's end cost ~50 copied pages); a cold start has no atexit module
    # until the program imports one, and its callbacks run at the end all the same
    source = (
        "import sys\n"
        "print('atexit' in sys.modules)\n"
        "import atexit\n"
        "atexit.register(print, 'bye', sys.stdin.read().strip())\n"
        "print('main')\n"
    )
    cold = run_code(source, stdin="input")["stdout"]
    assert cold == "False\nmain\nbye input\n", cold
    suite_id = suite(client, [{"name": n, "stdin": "input", "expected_output": cold} for n in "ab"], checker={"type": "exact"})
    tests = grade(client, source, suite_id)["grade"]["tests"]
    assert [t["verdict"] for t in tests] == ["PASSED", "PASSED"], [t["actual_output"] for t in tests]


FORKS_UNTIL_REFUSED = """\
import os, time
children = []
while len(children) < 500:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    children.append(pid)
print(len(children))
for pid in children:
    os.kill(pid, 9)
"""


def test_a_python_case_may_start_as_many_processes_as_a_cold_run(client, run_code):
    # the supervisor and the zygote the cases are forked from are counted beside the case: the
    # slot's process limit is raised by them, so the learner's program gets the cold run's allowance
    cold = run_code(FORKS_UNTIL_REFUSED)["stdout"].strip()
    assert cold.isdigit() and 0 < int(cold) < 500, cold
    tests = grade(client, FORKS_UNTIL_REFUSED, suite(client, [{"name": "n", "stdin": "", "expected_output": cold}]))["grade"]["tests"]
    assert tests[0]["verdict"] == "PASSED", (cold, tests[0])
