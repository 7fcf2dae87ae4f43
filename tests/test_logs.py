"""Structured logs: a request id on every response, one JSON line per request and per state change, no code."""
from __future__ import annotations

import json
import time

import pytest
from support.client import wait_terminal

from app import create_app


def json_lines(text: str) -> list[dict]:
    """Every line of captured stderr, parsed (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_incoming_request_id_is_echoed_and_logged(client, capsys):
    rv = client.get("/health", headers={"X-Request-ID": "trace-42.a_b"})
    assert rv.headers["X-Request-ID"] == "trace-42.a_b"
    lines = json_lines(capsys.readouterr().err)
    [line] = [line for line in lines if line.get("event") == "request"]
    assert line["request_id"] == "trace-42.a_b"
    assert line["method"] == "GET" and line["route"] == "/health" and line["path"] == "/health"
    assert line["status"] == rv.status_code
    assert line["duration_ms"] >= 0 and line["remote_addr"] == "127.0.0.1"
    assert line["level"] == "INFO" and line["ts"].endswith("Z")


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 65, "semi;colon", "new\u00e9line"])
def test_missing_or_unsafe_request_id_is_replaced(client, given):
    headers = {} if given is None else {"X-Request-ID": given}
    first = client.get("/languages", headers=headers).headers["X-Request-ID"]
    second = client.get("/languages", headers=headers).headers["X-Request-ID"]
    assert first != given and len(first) == 32 and int(first, 16) >= 0
    assert first != second


def test_error_responses_carry_the_request_id(client):
    for rv in (
        client.get("/executions/00000000-0000-0000-0000-000000000000", headers={"X-Request-ID": "e1"}),
        client.get("/no/such/path", headers={"X-Request-ID": "e2"}),
        client.delete("/languages", headers={"X-Request-ID": "e3"}),
        client.post("/executions", data="{not json", content_type="application/json", headers={"X-Request-ID": "e4"}),
    ):
        assert rv.status_code in (400, 404, 405)
        assert rv.json["error"]
        assert rv.headers["X-Request-ID"] in ("e1", "e2", "e3", "e4")


def test_state_changes_are_logged_without_code_stdin_or_output(client, capsys):
    source = "secret_in_source = 1\nprint('SECRET-OUTPUT-' + input())"
    rv = client.post("/executions", json={"language": "python", "source_code": source, "stdin": "SECRET-STDIN"})
    assert rv.status_code == 202
    execution_id = rv.json["execution_id"]
    result = wait_terminal(client, execution_id)
    assert result["stdout"] == "SECRET-OUTPUT-SECRET-STDIN\n"
    deadline = time.monotonic() + 10
    text = ""
    while True:
        # the runner logs the end right after it is recorded: give its thread a moment
        text += capsys.readouterr().err
        moves = [
            (line["from_status"], line["to_status"])
            for line in json_lines(text)
            if line.get("event") == "execution" and line["execution_id"] == execution_id
        ]
        if len(moves) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert moves == [("QUEUED", "RUNNING"), ("RUNNING", "COMPLETED")]
    end = [line for line in json_lines(text) if line.get("to_status") == "COMPLETED"][0]
    assert end["language"] == "python" and end["session_id"] is None and end["error"] is None
    assert end["exit_code"] == 0 and end["execution_time_ms"] >= 0 and end["queue_wait_ms"] >= 0
    assert "secret_in_source" not in text and "SECRET" not in text


def test_text_format_for_humans(config, capsys):
    app = create_app({**config, "LOG_FORMAT": "text", "RUNNER_ENABLED": False})
    try:
        app.test_client().get("/health", headers={"X-Request-ID": "human-1"})
    finally:
        app.extensions["engine"].runner.shutdown()
    [line] = [line for line in capsys.readouterr().err.splitlines() if "app.requests" in line]
    assert " INFO app.requests: GET /health " in line
    assert "request_id=human-1" in line and "route=/health" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_unknown_log_format_is_refused(config):
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        create_app({**config, "LOG_FORMAT": "xml", "RUNNER_ENABLED": False})


def test_a_refusal_is_logged_as_an_answer_not_as_an_error(config, capsys):
    """A 503 queue_full is the engine working as designed: one request line, no error traceback."""
    config.update(RUNNER_ENABLED=False, QUEUE_MAX=0)
    client = create_app(config).test_client()
    capsys.readouterr()

    rv = client.post("/executions", json={"language": "python", "source_code": "print(1)"})

    assert rv.status_code == 503 and rv.json["error"] == "queue_full"
    lines = json_lines(capsys.readouterr().err)
    assert [line["status"] for line in lines if line.get("event") == "request"] == [503]
    assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")], lines
