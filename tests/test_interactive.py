"""Interactive runs and stopping: stdin while a run runs, stdin_wanted, EOF, the clocks, cancel, across processes."""
from __future__ import annotations

import time

import jwt
import psutil
import pytest
from support.client import wait_terminal
from support.sse import event_stream, parse_events

from app import create_app

# each prompt printed without a newline, then read: the prompt must reach the page before the answer
PROGRAMS = {
    "python": 'name = input("Name? ")\nprint("hi", name)\nage = input("Age? ")\nprint(age, "next")\n',
    "javascript": (
        'const rl = require("readline").createInterface({input: process.stdin, output: process.stdout});\n'
        'rl.question("Name? ", (name) => { console.log("hi " + name);\n'
        '  rl.question("Age? ", (age) => { console.log(age + " next"); rl.close(); }); });\n'
    ),
    # C stdio (the fully buffered case) and iostreams in one program
    "cpp": (
        "#include <cstdio>\n#include <iostream>\n#include <string>\n"
        'int main() { char name[64]; printf("Name? "); if (scanf("%63s", name) != 1) return 1;\n'
        '  printf("hi %s\\n", name); fflush(stdout);\n'
        '  std::string age; std::cout << "Age? "; std::cin >> age; std::cout << age << " next" << std::endl; }\n'
    ),
    "java": (
        "import java.util.Scanner;\npublic class Main { public static void main(String[] a) {\n"
        '  Scanner in = new Scanner(System.in); System.out.print("Name? "); String name = in.nextLine();\n'
        '  System.out.println("hi " + name); System.out.print("Age? "); System.out.println(in.nextLine() + " next"); } }\n'
    ),
}
SECRET = "test-secret-that-is-long-enough-for-hs256!"
STREAM_SECONDS = 60


@pytest.fixture
def config(config):
    config.update(EVENTS_MAX_SECONDS=STREAM_SECONDS, RUN_TIMEOUT_SECONDS=5.0, RUN_CPU_SECONDS=5)
    return config


def start(client, source: str, language: str = "python", headers: dict | None = None, **body: object) -> str:
    rv = client.post(
        "/executions", json={"language": language, "source_code": source, "interactive": True, **body}, headers=headers or {}
    )
    assert rv.status_code == 202, rv.json
    assert rv.json["interactive"] is True
    return rv.json["execution_id"]


def converse(client, execution_id: str, answers: list[str]) -> list[dict]:
    """Follow the events stream; answer each stdin_wanted with the next answer, then with EOF; the events to final."""
    answers = list(answers)
    seq = 0
    seen: list[dict] = []
    deadline = time.monotonic() + STREAM_SECONDS
    with client.get(f"/executions/{execution_id}/events", buffered=False) as rv:
        assert rv.status_code == 200
        for event in parse_events(rv.response):
            if "event" not in event:
                continue
            seen.append(event)
            if event["event"] == "final":
                return seen
            if event["event"] == "stdin_wanted":
                seq += 1
                body = {"data": answers.pop(0), "seq": seq} if answers else {"eof": True, "seq": seq}
                sent = client.post(f"/executions/{execution_id}/stdin", json=body)
                assert sent.status_code == 202, sent.json
            assert time.monotonic() < deadline, seen
    raise AssertionError(f"the stream ended without a final event: {seen}")


def kinds(events: list[dict]) -> list[tuple[str, object]]:
    return [(e["event"], e["data"].get("text", e["data"].get("prompt"))) for e in events if e["event"] != "status"]


def wait_status(client, execution_id: str, status: str, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        body = client.get(f"/executions/{execution_id}").json
        if body["status"] == status:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.02)


@pytest.mark.parametrize("language", ["python", "javascript", "cpp", "java"])
def test_a_learner_answers_prompts_while_the_program_runs(client, language):
    execution_id = start(client, PROGRAMS[language], language)
    events = converse(client, execution_id, ["bob\n", "42\n"])

    final = events[-1]["data"]
    assert final["status"] == "COMPLETED", final
    assert final["stdout"] == "Name? hi bob\nAge? 42 next\n"
    seen = kinds(events)
    # each prompt is on the page, and announced as waiting, before its answer goes in
    stdout_before = lambda index: "".join(text for kind, text in seen[:index] if kind == "stdout")  # noqa: E731
    first_wait = seen.index(("stdin_wanted", "Name? "))
    assert stdout_before(first_wait).endswith("Name? ")
    assert seen.index(("stdin", "bob\n")) > first_wait
    second_wait = seen.index(("stdin_wanted", "Age? "))
    assert stdout_before(second_wait).endswith("hi bob\nAge? ")
    assert seen.index(("stdin", "42\n")) > second_wait
    # the transcript interleaves what was typed with what was printed
    entries = final["transcript"]["entries"]
    assert [(e["stream"], e["text"]) for e in entries[:4]] == [
        ("stdout", "Name? "), ("stdin", "bob\n"), ("stdout", "hi bob\nAge? "), ("stdin", "42\n"),
    ]
    assert final["transcript"]["truncated"] is False


def test_eof_ends_the_input_and_the_run_request_stdin_comes_first(client):
    execution_id = start(client, "import sys\nfor line in sys.stdin:\n    print(line.strip().upper())\nprint('end')", stdin="one\n")
    wait_status(client, execution_id, "RUNNING")
    assert client.post(f"/executions/{execution_id}/stdin", json={"data": "two\n"}).status_code == 202
    rv = client.post(f"/executions/{execution_id}/stdin", json={"eof": True})
    assert rv.status_code == 202 and rv.json["eof"] is True and rv.json["stdin_bytes"] == 8
    final = wait_terminal(client, execution_id)
    assert (final["status"], final["stdout"]) == ("COMPLETED", "ONE\nTWO\nend\n")
    # nothing follows the end of input, and nothing reaches a run that has ended
    assert client.post(f"/executions/{execution_id}/stdin", json={"data": "x"}).json["error"] == "not_running"


def test_stdin_is_refused_unless_an_interactive_run_is_running(client, run_code):
    finished = run_code("print(1)")
    rv = client.post(f"/executions/{finished['execution_id']}/stdin", json={"data": "x\n"})
    assert (rv.status_code, rv.json["error"]) == (409, "not_running")
    assert client.post("/executions/nope/stdin", json={"data": "x"}).status_code == 404
    rv = client.post(f"/executions/{finished['execution_id']}/stdin", json={"data": 5})
    assert (rv.status_code, rv.json["error"]) == (422, "validation_error")


def test_a_flood_of_stdin_posts_arrives_once_each_in_order(client, config):
    lines = 200
    execution_id = start(client, "import sys\nnumbers = [int(l) for l in sys.stdin]\nprint(len(numbers), numbers == sorted(numbers), sum(numbers))")
    wait_status(client, execution_id, "RUNNING")
    for n in range(1, lines + 1):
        rv = client.post(f"/executions/{execution_id}/stdin", json={"data": f"{n}\n", "seq": n})
        assert rv.status_code == 202 and rv.json["appended"], rv.json
        if n % 50 == 0:
            # a retry of a chunk already taken is accepted and not appended again
            again = client.post(f"/executions/{execution_id}/stdin", json={"data": f"{n}\n", "seq": n})
            assert (again.status_code, again.json["appended"]) == (202, False)
    gap = client.post(f"/executions/{execution_id}/stdin", json={"data": "1\n", "seq": lines + 5})
    assert (gap.status_code, gap.json["error"], gap.json["expected_seq"]) == (409, "stdin_out_of_order", lines + 1)
    conflict = client.post(f"/executions/{execution_id}/stdin", json={"data": "999\n", "seq": 3})
    assert (conflict.status_code, conflict.json["error"]) == (409, "stdin_conflict")
    too_much = client.post(f"/executions/{execution_id}/stdin", json={"data": "7" * config.get("STDIN_MAX_BYTES", 256 * 1024)})
    assert (too_much.status_code, too_much.json["error"]) == (413, "stdin_too_large")
    client.post(f"/executions/{execution_id}/stdin", json={"eof": True})
    final = wait_terminal(client, execution_id)
    assert final["stdout"] == f"{lines} True {lines * (lines + 1) // 2}\n"


def test_cancel_a_running_program_keeps_its_output(client, config):
    execution_id = client.post("/executions", json={"language": "python", "source_code": "print('started', flush=True)\nwhile True: pass"}).json["execution_id"]
    printed = ""
    with client.get(f"/executions/{execution_id}/events", buffered=False) as rv:
        for event in parse_events(rv.response):
            printed += event["data"]["text"] if event.get("event") == "stdout" else ""
            if printed == "started\n":
                break
    rv = client.post(f"/executions/{execution_id}/cancel")
    assert rv.status_code == 202
    final = wait_terminal(client, execution_id)
    assert (final["status"], final["error"], final["stdout"]) == ("FAILED", "cancelled", "started\n")
    rv = client.post(f"/executions/{execution_id}/cancel")
    assert (rv.status_code, rv.json["error"]) == (409, "already_finished")
    assert client.post("/executions/nope/cancel").status_code == 404


def test_cancel_a_fork_bomb_leaves_the_engine_serving(config, request):
    # cold starts only: the bomb's processes are then the ones that run main.py (the hostile
    # tests cancel-free fork bombs through the fork server too)
    config.update(WARM_POOL={}, FORK_SERVER=False)
    app = create_app(config)
    request.addfinalizer(app.extensions["engine"].runner.shutdown)
    client = app.test_client()
    bomb = "import os\nprint('go', flush=True)\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    execution_id = client.post("/executions", json={"language": "python", "source_code": bomb}).json["execution_id"]
    wait_status(client, execution_id, "RUNNING")
    until(lambda: len(bomb_processes()) > 5, "the bomb forking")
    assert client.post(f"/executions/{execution_id}/cancel").status_code == 202
    final = wait_terminal(client, execution_id)
    assert (final["status"], final["error"]) == ("FAILED", "cancelled")
    # the whole tree went with it
    until(lambda: not bomb_processes(), "every process of the bomb gone")
    after = client.post("/executions", json={"language": "python", "source_code": "print('fine')"}).json["execution_id"]
    assert wait_terminal(client, after)["stdout"] == "fine\n"


def bomb_processes() -> list[psutil.Process]:
    """The learner's programs among this engine's descendants (the sandbox runs main.py)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.cmdline()[-1:] == ["main.py"] and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.Error:
            continue
    return found


def until(predicate, what: str, seconds: float = 10) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.02)


def test_cancel_a_queued_run_ends_it_at_once(config):
    app = create_app({**config, "RUNNER_ENABLED": False})
    client = app.test_client()
    execution_id = client.post("/executions", json={"language": "python", "source_code": "print(1)"}).json["execution_id"]
    rv = client.post(f"/executions/{execution_id}/cancel")
    assert (rv.status_code, rv.json["status"], rv.json["error"]) == (202, "FAILED", "cancelled")
    assert client.post(f"/executions/{execution_id}/stdin", json={"data": "x"}).json["error"] == "not_running"


def test_the_wall_clock_stops_while_the_program_waits_for_input(config, request):
    config.update(RUN_TIMEOUT_SECONDS=2.0, INTERACTIVE_INPUT_IDLE_SECONDS=10.0)
    app = create_app(config)
    request.addfinalizer(app.extensions["engine"].runner.shutdown)
    client = app.test_client()
    execution_id = start(client, 'a = input("? ")\nb = input("? ")\nprint(a + b)')
    wait_status(client, execution_id, "RUNNING")
    # longer than the whole wall limit, thinking about each answer
    for seq, answer in enumerate(["4\n", "2\n"], start=1):
        time.sleep(1.2)
        assert client.post(f"/executions/{execution_id}/stdin", json={"data": answer, "seq": seq}).status_code == 202
    final = wait_terminal(client, execution_id)
    assert (final["status"], final["stdout"]) == ("COMPLETED", "? ? 42\n"), final
    # the program's own time: not the 2.4 s it spent waiting for its answers
    assert final["execution_time_ms"] < 2000


def test_input_idle_and_whole_length_limits_end_interactive_runs(config, request):
    config.update(INTERACTIVE_INPUT_IDLE_SECONDS=1.0, INTERACTIVE_TIME_LIMIT_SECONDS=2.5)
    app = create_app(config)
    request.addfinalizer(app.extensions["engine"].runner.shutdown)
    client = app.test_client()
    idle = start(client, 'input("Name? ")')
    final = wait_terminal(client, idle)
    assert (final["status"], final["error"], final["stdout"]) == ("TIMEOUT", "input_idle_limit", "Name? ")

    chatty = start(client, "while True:\n    input()")
    wait_status(client, chatty, "RUNNING")
    seq = 0
    while client.get(f"/executions/{chatty}").json["status"] == "RUNNING":
        seq += 1
        client.post(f"/executions/{chatty}/stdin", json={"data": "more\n", "seq": seq})
        time.sleep(0.3)
    final = wait_terminal(client, chatty)
    assert (final["status"], final["error"]) == ("TIMEOUT", "interactive_time_limit"), final


def test_only_the_owner_may_send_stdin_or_cancel(config, request):
    app = create_app({**config, "AUTH_ENABLED": True, "AUTH_JWT_SECRET": SECRET, "WARM_POOL": {}})
    request.addfinalizer(app.extensions["engine"].runner.shutdown)
    client = app.test_client()
    alice = {"Authorization": "Bearer " + jwt.encode({"sub": "alice", "exp": time.time() + 300}, SECRET, "HS256")}
    bob = {"Authorization": "Bearer " + jwt.encode({"sub": "bob", "exp": time.time() + 300}, SECRET, "HS256")}
    execution_id = start(client, "print(input())", headers=alice)
    deadline = time.monotonic() + 30
    while client.get(f"/executions/{execution_id}", headers=alice).json["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert client.post(f"/executions/{execution_id}/stdin", json={"data": "x\n"}, headers=bob).status_code == 404
    assert client.post(f"/executions/{execution_id}/cancel", headers=bob).status_code == 404
    assert client.post(f"/executions/{execution_id}/stdin", json={"data": "x\n"}).status_code == 401
    assert client.post(f"/executions/{execution_id}/stdin", json={"data": "mine\n"}, headers=alice).status_code == 202
    final = client.get(f"/executions/{execution_id}?wait=20", headers=alice).json
    assert (final["status"], final["stdout"]) == ("COMPLETED", "mine\n")


def test_stdin_and_cancel_posted_to_another_engine_process_reach_the_run(live_server, any_database):
    runs_it = live_server(database=any_database, WARM_POOL={}, RUN_TIMEOUT_SECONDS=10)
    # an engine process over the same database that runs nothing: whatever it is sent must travel
    other = live_server(database=any_database, RUNNER_ENABLED=False)
    status, body, _ = runs_it.call("POST", "/executions", {"language": "python", "interactive": True, "source_code": 'print("hi", input("Name? "))\nwhile True: pass'})
    assert status == 202
    execution_id = body["execution_id"]
    printed = ""
    with event_stream(f"http://127.0.0.1:{runs_it.port}", execution_id) as events:
        for event in events:
            if event.get("event") == "stdin_wanted":
                status, sent, _ = other.call("POST", f"/executions/{execution_id}/stdin", {"data": "bob\n", "seq": 1})
                assert (status, sent["appended"]) == (202, True)
            printed += event["data"]["text"] if event.get("event") == "stdout" else ""
            # a print() may arrive in several chunks
            if printed.endswith("hi bob\n"):
                break
            assert event.get("event") != "final", event
    status, _, _ = other.call("POST", f"/executions/{execution_id}/cancel")
    assert status == 202
    final = runs_it.wait_terminal(execution_id, 30)
    assert (final["status"], final["error"], final["stdout"]) == ("FAILED", "cancelled", "Name? hi bob\n")


def test_a_graceful_stop_ends_interactive_runs_instead_of_waiting_on_the_learner(config):
    app = create_app(config)
    client = app.test_client()
    execution_id = start(client, 'input("Name? ")')
    wait_status(client, execution_id, "RUNNING")
    app.extensions["engine"].runner.shutdown()
    final = client.get(f"/executions/{execution_id}").json
    assert (final["status"], final["error"]) == ("FAILED", "interrupted")
