"""Runs: queueing (one-shot and from a session), results, the long-poll, and the state machine."""
from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from support.client import wait_terminal

from app.storage import models

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def parse_time(text: str) -> datetime:
    assert ISO_UTC.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def submit(client, source: str, stdin: str = "") -> dict:
    rv = client.post("/executions", json={"language": "python", "source_code": source, "stdin": stdin})
    assert rv.status_code == 202, rv.json
    return rv.json


@pytest.fixture
def idle_client(config, request):
    """A client of an engine whose runner is off: executions stay QUEUED until a test moves them.

    Ask for it before `app` (or instead of it): the app is made with the config as it is then.
    """
    config["RUNNER_ENABLED"] = False
    return request.getfixturevalue("client")


def test_post_execution_is_accepted_and_queued(client):
    rv = client.post("/executions", json={"language": "python", "source_code": "print('hello')"})
    assert rv.status_code == 202
    execution = rv.json
    assert str(uuid.UUID(execution["execution_id"])) == execution["execution_id"]
    assert rv.headers["Location"].endswith(f"/executions/{execution['execution_id']}")
    assert execution["status"] == "QUEUED"
    assert execution["session_id"] is None
    assert execution["language"] == "python"
    parse_time(execution["queued_at"])

    assert wait_terminal(client, execution["execution_id"])["status"] == "COMPLETED"


def test_the_202_says_queued_even_when_a_worker_is_idle(client):
    # the answer to POST is the execution as queued, whatever the runner has done since
    statuses = []
    for _ in range(4):
        execution = submit(client, "print(1)")
        statuses.append(execution["status"])
        wait_terminal(client, execution["execution_id"])

    assert statuses == ["QUEUED"] * 4


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"language": "python"},
        {"source_code": "print(1)"},
        {"language": "python", "source_code": None},
        {"language": ["python"], "source_code": "print(1)"},
        {"language": "python", "source_code": "print(1)", "stdin": 5},
        {"language": "python", "source_code": "print(1)", "timeout": 100},
    ],
)
def test_post_execution_rejects_missing_or_wrong_fields_with_422(client, body):
    rv = client.post("/executions", json=body)
    assert rv.status_code == 422
    assert rv.json["error"] == "validation_error"
    assert rv.json["message"]


def test_post_execution_rejects_an_unknown_language_with_422(client):
    rv = client.post("/executions", json={"language": "cobol", "source_code": "DISPLAY 'HI'."})
    assert rv.status_code == 422
    assert rv.json["error"] == "unknown_language"
    assert "python" in rv.json["message"]


def test_post_execution_rejects_oversized_code_or_stdin_with_413(client, app):
    too_big = app.config["SOURCE_MAX_BYTES"] + 1
    rv = client.post("/executions", json={"language": "python", "source_code": "#" * too_big})
    assert rv.status_code == 413
    assert rv.json["error"] == "source_code_too_large"

    too_big = app.config["STDIN_MAX_BYTES"] + 1
    rv = client.post("/executions", json={"language": "python", "source_code": "", "stdin": "x" * too_big})
    assert rv.status_code == 413
    assert rv.json["error"] == "stdin_too_large"


def test_completed_run_has_the_whole_result(client):
    execution = submit(client, "print('hello')")

    rv = client.get(f"/executions/{execution['execution_id']}?wait=20")
    assert rv.status_code == 200
    done = rv.json
    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == "hello\n"
    assert done["stderr"] == ""
    assert done["exit_code"] == 0
    assert done["error"] is None
    assert done["stdout_truncated"] is False
    assert done["stderr_truncated"] is False
    assert isinstance(done["execution_time_ms"], int)
    assert 0 <= done["execution_time_ms"] < 20_000
    queued, started, finished = (parse_time(done[k]) for k in ("queued_at", "started_at", "finished_at"))
    assert queued <= started <= finished
    assert abs(datetime.now(timezone.utc) - finished) < timedelta(minutes=1)

    # a read without wait gives the same stored result
    rv = client.get(f"/executions/{execution['execution_id']}")
    assert rv.status_code == 200
    assert rv.json == done


def test_nonzero_exit_fails_with_its_exit_code(run_code):
    done = run_code("import sys\nprint('partial')\nprint('bad', file=sys.stderr)\nsys.exit(3)")
    assert done["status"] == "FAILED", done
    assert done["error"] == "nonzero_exit"
    assert done["exit_code"] == 3
    assert done["stdout"] == "partial\n"
    assert done["stderr"] == "bad\n"
    assert done["finished_at"] is not None


def test_an_exception_fails_with_the_traceback_on_stderr(run_code):
    done = run_code("raise ValueError('boom')")
    assert done["status"] == "FAILED", done
    assert done["exit_code"] == 1
    assert "ValueError: boom" in done["stderr"]


def test_an_endless_loop_times_out(run_code):
    started = time.monotonic()
    done = run_code("while True:\n    pass\n")
    assert done["status"] == "TIMEOUT", done
    assert done["error"] in ("timeout", "cpu_time_limit")
    # RUN_TIMEOUT_SECONDS is 2 in the tests: it ended near the limit, not long after
    assert 1_500 <= done["execution_time_ms"] <= 5_000
    assert time.monotonic() - started < 10


def test_stdin_reaches_the_program(run_code):
    done = run_code("import sys\nprint(sys.stdin.read()[::-1])", stdin="abc")
    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == "cba\n"


@pytest.mark.parametrize("wait", ["-1", "31", "abc", "nan", "inf", "1e999"])
def test_wait_out_of_range_is_400(client, wait):
    execution = submit(client, "print(1)")

    rv = client.get(f"/executions/{execution['execution_id']}?wait={wait}")
    assert rv.status_code == 400
    assert rv.json["error"] == "invalid_parameter"


def test_get_of_an_unknown_execution_is_404_at_once(client):
    rv = client.get(f"/executions/{uuid.uuid4()}")
    assert rv.status_code == 404
    assert rv.json["error"] == "not_found"

    started = time.monotonic()
    rv = client.get(f"/executions/{uuid.uuid4()}?wait=5")
    assert rv.status_code == 404
    assert rv.json["error"] == "not_found"
    assert time.monotonic() - started < 2


def test_long_poll_is_woken_by_completion(client):
    execution = submit(client, "import time; time.sleep(0.5); print(1)")

    rv = client.get(f"/executions/{execution['execution_id']}?wait=30")
    returned_at = datetime.now(timezone.utc)
    assert rv.status_code == 200
    assert rv.json["status"] == "COMPLETED", rv.json
    assert rv.json["stdout"] == "1\n"
    # answered as the run ended, not when the 30 s ran out
    assert returned_at - parse_time(rv.json["finished_at"]) < timedelta(seconds=0.5)
    assert returned_at - parse_time(rv.json["started_at"]) < timedelta(seconds=2)


def test_long_poll_returns_the_running_execution_when_the_wait_ends(client):
    execution = submit(client, "import time; time.sleep(30)")

    started = time.monotonic()
    rv = client.get(f"/executions/{execution['execution_id']}?wait=1")
    elapsed = time.monotonic() - started
    assert rv.status_code == 200
    assert rv.json["status"] in ("QUEUED", "RUNNING")
    assert rv.json["finished_at"] is None
    assert rv.json["exit_code"] is None
    assert 0.9 <= elapsed < 2.5

    # a sleeping program is stopped by the wall clock (2 s in the tests)
    done = wait_terminal(client, execution["execution_id"])
    assert done["status"] == "TIMEOUT", done
    assert done["error"] == "timeout"


def test_session_run_is_accepted_and_queued(client):
    rv = client.post("/code-sessions", json={"source_code": "print('from a session')"})
    session_id = rv.json["session_id"]

    rv = client.post(f"/code-sessions/{session_id}/run")
    assert rv.status_code == 202
    execution = rv.json
    assert execution["status"] == "QUEUED"
    assert execution["session_id"] == session_id
    assert rv.headers["Location"].endswith(f"/executions/{execution['execution_id']}")
    assert "Idempotent-Replayed" not in rv.headers

    done = wait_terminal(client, execution["execution_id"])
    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == "from a session\n"
    assert done["session_id"] == session_id


def test_session_run_snapshots_the_code_of_that_moment(client):
    rv = client.post("/code-sessions", json={"source_code": "print('first')"})
    url = f"/code-sessions/{rv.json['session_id']}"

    rv = client.post(f"{url}/run")
    assert rv.status_code == 202
    first = rv.json["execution_id"]
    rv = client.patch(url, json={"source_code": "print('second')"})
    assert rv.status_code == 200
    rv = client.post(f"{url}/run")
    second = rv.json["execution_id"]

    assert wait_terminal(client, first)["stdout"] == "first\n"
    assert wait_terminal(client, second)["stdout"] == "second\n"


def test_include_source_gives_a_past_run_its_own_code_and_stdin(client):
    rv = client.post("/code-sessions", json={"source_code": "print(int(input()) + 1)"})
    url = f"/code-sessions/{rv.json['session_id']}"
    first = client.post(f"{url}/run", json={"stdin": "41\n"}).json["execution_id"]
    client.patch(url, json={"source_code": "print('changed since')"})
    wait_terminal(client, first)

    rv = client.get(f"/executions/{first}?include=source")
    assert rv.status_code == 200
    assert (rv.json["source_code"], rv.json["stdin"], rv.json["stdout"]) == ("print(int(input()) + 1)", "41\n", "42\n")
    # without it the object is the contract's, as lists and streams give it
    plain = client.get(f"/executions/{first}").json
    assert "source_code" not in plain and "stdin" not in plain
    rv = client.get(f"/executions/{first}?include=everything")
    assert rv.status_code == 400 and rv.json["error"] == "invalid_parameter"


def test_session_run_passes_stdin(client):
    rv = client.post("/code-sessions", json={"source_code": "print(int(input()) * 2)"})
    url = f"/code-sessions/{rv.json['session_id']}"

    rv = client.post(f"{url}/run", json={"stdin": "21\n"})
    assert rv.status_code == 202
    done = wait_terminal(client, rv.json["execution_id"])
    assert done["status"] == "COMPLETED", done
    assert done["stdout"] == "42\n"


def test_idempotency_key_replays_the_same_execution(client):
    rv = client.post("/code-sessions", json={"source_code": "print('once')"})
    url = f"/code-sessions/{rv.json['session_id']}"
    rv = client.post("/code-sessions", json={"source_code": "print('once')"})
    other_url = f"/code-sessions/{rv.json['session_id']}"

    rv = client.post(f"{url}/run", headers={"Idempotency-Key": "key-1"})
    assert rv.status_code == 202
    assert "Idempotent-Replayed" not in rv.headers
    first = rv.json["execution_id"]

    rv = client.post(f"{url}/run", headers={"Idempotency-Key": "key-1"})
    assert rv.status_code == 202
    assert rv.headers["Idempotent-Replayed"] == "true"
    assert rv.json["execution_id"] == first
    assert wait_terminal(client, first)["stdout"] == "once\n"

    # a replay after the run ended still answers with that run, not a new one
    rv = client.post(f"{url}/run", headers={"Idempotency-Key": "key-1"})
    assert rv.status_code == 202
    assert rv.headers["Idempotent-Replayed"] == "true"
    assert rv.json["execution_id"] == first
    assert rv.json["status"] == "COMPLETED"

    rv = client.post(f"{url}/run", headers={"Idempotency-Key": "key-2"})
    assert rv.status_code == 202
    assert "Idempotent-Replayed" not in rv.headers
    second = rv.json["execution_id"]
    assert second != first
    wait_terminal(client, second)

    rv = client.post(f"{url}/run")
    assert rv.status_code == 202
    assert "Idempotent-Replayed" not in rv.headers
    assert rv.json["execution_id"] not in (first, second)
    wait_terminal(client, rv.json["execution_id"])

    # keys belong to their session
    rv = client.post(f"{other_url}/run", headers={"Idempotency-Key": "key-1"})
    assert rv.status_code == 202
    assert "Idempotent-Replayed" not in rv.headers
    assert rv.json["execution_id"] != first
    wait_terminal(client, rv.json["execution_id"])

    rv = client.get(f"{url}/executions")
    assert rv.headers["X-Total-Count"] == "3"


def test_session_run_rejects_bad_input(client):
    rv = client.post(f"/code-sessions/{uuid.uuid4()}/run")
    assert rv.status_code == 404
    assert rv.json["error"] == "not_found"

    rv = client.post("/code-sessions", json={"source_code": "print(1)"})
    url = f"/code-sessions/{rv.json['session_id']}"
    rv = client.post(f"{url}/run", json={"stdin": 5})
    assert rv.status_code == 422
    rv = client.post(f"{url}/run", json={"source_code": "print(2)"})
    assert rv.status_code == 422
    rv = client.post(f"{url}/run", data="{", content_type="application/json")
    assert rv.status_code == 400
    assert client.get(f"{url}/executions").headers["X-Total-Count"] == "0"


def test_status_only_moves_forward(idle_client, app):
    execution_id = submit(idle_client, "print(1)")["execution_id"]

    with app.app_context():
        assert models.move(execution_id, models.COMPLETED) is False
        assert models.move(execution_id, models.TIMEOUT) is False
        with pytest.raises(ValueError):
            models.move(execution_id, models.QUEUED)
        assert idle_client.get(f"/executions/{execution_id}").json["status"] == "QUEUED"

        assert models.move(execution_id, models.RUNNING) is True
        assert models.move(execution_id, models.RUNNING) is False
        assert idle_client.get(f"/executions/{execution_id}").json["status"] == "RUNNING"

        assert models.move(execution_id, models.COMPLETED, exit_code=0) is True
        for status in (models.RUNNING, models.FAILED, models.TIMEOUT, models.COMPLETED):
            assert models.move(execution_id, status) is False
        with pytest.raises(ValueError):
            models.move(execution_id, models.QUEUED)

    rv = idle_client.get(f"/executions/{execution_id}")
    assert rv.json["status"] == "COMPLETED"
    assert rv.json["exit_code"] == 0


def test_a_queued_run_may_fail_before_it_starts(idle_client, app):
    execution_id = submit(idle_client, "print(1)")["execution_id"]

    with app.app_context():
        assert models.move(execution_id, models.FAILED, error="interrupted") is True
        assert models.move(execution_id, models.RUNNING) is False

    rv = idle_client.get(f"/executions/{execution_id}?wait=1")
    assert rv.json["status"] == "FAILED"
    assert rv.json["error"] == "interrupted"
