"""Live feedback: GET /executions/{id}/events streams status, output chunks and the result, in process and through gunicorn."""
from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import pytest
from support.client import wait_terminal
from support.http import call
from support.servers import Server, gunicorn
from support.sse import event_stream, parse_events

from app import create_app
from app.live.hub import Hub
from app.storage.database import db
from app.storage.models import Execution

# a run that writes to both streams, with pauses so each write is its own chunk
INTERLEAVED = """\
import sys, time
sys.stdout.write("one\\n"); sys.stdout.flush(); time.sleep(0.3)
sys.stderr.write("two\\n"); sys.stderr.flush(); time.sleep(0.3)
sys.stdout.write("three\\n"); sys.stdout.flush()
"""
# six lines over about a second
TICKER = """\
import time
for n in range(6):
    print(f"tick {n}", flush=True)
    time.sleep(0.2)
"""
# the program: print, sleep, print, nothing flushed by hand
PRINT_SLEEP_PRINT = """\
import time
print("first", time.time())
time.sleep(1)
print("second", time.time())
"""
STREAM_DEADLINE_SECONDS = 60


@pytest.fixture
def config(config):
    # a stream that misbehaves ends on its own instead of hanging the suite
    config["EVENTS_MAX_SECONDS"] = STREAM_DEADLINE_SECONDS
    return config


def submit(client, source: str) -> str:
    rv = client.post("/executions", json={"language": "python", "source_code": source})
    assert rv.status_code == 202, rv.json
    return rv.json["execution_id"]


@pytest.fixture
def stream(client) -> Iterator:
    """Open /executions/{id}/events in process; returns (response, events). Every response is closed at the end."""
    opened = []

    def open_stream(execution_id: str, **headers: str):
        rv = client.get(f"/executions/{execution_id}/events", headers=headers, buffered=False)
        opened.append(rv)
        assert rv.status_code == 200, rv.get_data()
        assert rv.mimetype == "text/event-stream"
        return rv, parse_events(rv.response)

    yield open_stream
    for rv in opened:
        rv.close()


def until_final(events: Iterator[dict]) -> list[dict]:
    seen = []
    deadline = time.monotonic() + STREAM_DEADLINE_SECONDS
    for event in events:
        seen.append(event)
        if event.get("event") == "final":
            return seen
        assert time.monotonic() < deadline, seen
    raise AssertionError(f"the stream ended without a final event: {seen}")


def named(events: list[dict]) -> list[dict]:
    """The events a client sees (no retry hint, no comments)."""
    return [event for event in events if "event" in event]


def test_finished_execution_gets_status_and_final_at_once(client, stream):
    execution_id = submit(client, 'print("done")')
    done = wait_terminal(client, execution_id)

    started = time.monotonic()
    rv, events = stream(execution_id)
    seen = until_final(events)
    assert time.monotonic() - started < 2

    assert [(e["event"], e["data"].get("status")) for e in named(seen)] == [("status", "COMPLETED"), ("final", "COMPLETED")]
    assert named(seen)[-1]["data"] == done
    assert seen[0].get("retry") == "1000"
    # the stream ends after the final event
    assert list(events) == []


def test_a_run_streams_transitions_and_chunks_in_order(client, stream):
    execution_id = submit(client, INTERLEAVED)
    rv, events = stream(execution_id)
    seen = named(until_final(events))

    kinds = [e["event"] for e in seen]
    statuses = [e["data"]["status"] for e in seen if e["event"] == "status"]
    assert statuses[-2:] == ["RUNNING", "COMPLETED"] and statuses[0] in ("QUEUED", "RUNNING")
    assert len(statuses) == len(set(statuses)), "a transition is told once"
    output = [(e["event"], e["data"]["text"]) for e in seen if e["event"] in ("stdout", "stderr")]
    assert output == [("stdout", "one\n"), ("stderr", "two\n"), ("stdout", "three\n")]
    assert kinds.index("stdout") > kinds.index("status")
    final = seen[-1]["data"]
    assert final == client.get(f"/executions/{execution_id}").json
    assert (final["status"], final["stdout"], final["stderr"], final["exit_code"]) == ("COMPLETED", "one\nthree\n", "two\n", 0)
    ids = [int(e["id"]) for e in seen if "id" in e]
    # the three chunks and the end at least (the run may have started before the stream opened)
    assert ids == sorted(set(ids)) and len(ids) >= 4


def test_reconnect_with_last_event_id_neither_loses_nor_repeats(client, stream):
    execution_id = submit(client, TICKER)
    rv, events = stream(execution_id)
    first = []
    for event in events:
        if event.get("event") == "stdout":
            first.append(event)
            if len(first) == 2:
                break
    rv.close()

    rv, events = stream(execution_id, **{"Last-Event-ID": first[-1]["id"]})
    rest = named(until_final(events))
    chunks = first + [e for e in rest if e["event"] == "stdout"]
    final = rest[-1]["data"]
    assert final["status"] == "COMPLETED"
    assert len(chunks) > 2, "the run was still going: the reconnect must have resumed its chunks"
    assert "".join(e["data"]["text"] for e in chunks) == final["stdout"] == "".join(f"tick {n}\n" for n in range(6))
    assert all(int(e["id"]) > int(first[-1]["id"]) for e in rest if "id" in e)

    # after the end, a reconnect gets the result at once, with no chunk again
    rv, events = stream(execution_id, **{"Last-Event-ID": first[-1]["id"]})
    assert [e["event"] for e in named(until_final(events))] == ["status", "final"]


def test_unknown_execution_and_bad_last_event_id_get_json_errors(client):
    rv = client.get("/executions/00000000-0000-0000-0000-000000000000/events")
    assert rv.status_code == 404
    assert rv.json["error"] == "not_found"

    execution_id = submit(client, "pass")
    # "¹" and "٣" are digits to str.isdigit(), not to int()
    for bad in ("seven", "\u00b9", "\u0663"):
        rv = client.get(f"/executions/{execution_id}/events", headers={"Last-Event-ID": bad})
        assert rv.status_code == 400
        assert rv.json["error"] == "invalid_parameter"


def test_streams_past_the_limit_get_503_until_one_closes(config, request):
    config["EVENTS_MAX_STREAMS"] = 2
    client = request.getfixturevalue("client")
    execution_id = submit(client, "pass")
    first = client.get(f"/executions/{execution_id}/events", buffered=False)
    second = client.get(f"/executions/{execution_id}/events", buffered=False)
    try:
        assert (first.status_code, second.status_code) == (200, 200)
        rv = client.get(f"/executions/{execution_id}/events")
        assert rv.status_code == 503
        assert rv.json["error"] == "too_many_streams"
        assert rv.headers["Retry-After"]
    finally:
        first.close()
    third = client.get(f"/executions/{execution_id}/events", buffered=False)
    assert third.status_code == 200
    third.close()
    second.close()


@pytest.fixture
def quiet_app(tmp_path):
    """An engine process that runs nothing itself, over a database another engine may run."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'engine.db'}",
            "RUNNER_ENABLED": False,
            "EVENTS_MAX_SECONDS": STREAM_DEADLINE_SECONDS,
        }
    )
    yield app
    app.extensions["engine"].runner.shutdown()


def test_a_run_of_another_engine_is_followed_by_polling_the_database(client, quiet_app):
    # `client` is the engine that runs it; quiet_app only reads the same database
    execution_id = submit(client, 'print("from elsewhere")')
    with quiet_app.test_client().get(f"/executions/{execution_id}/events", buffered=False) as rv:
        seen = named(until_final(parse_events(rv.response)))

    statuses = [e["data"]["status"] for e in seen if e["event"] == "status"]
    assert statuses[-1] == "COMPLETED"
    assert set(statuses) <= {"QUEUED", "RUNNING", "COMPLETED"}
    assert seen[-1]["event"] == "final"
    assert seen[-1]["data"]["stdout"] == "from elsewhere\n"
    assert not [e for e in seen if e["event"] in ("stdout", "stderr")], "another process's chunks are not seen here"


def test_an_idle_stream_sends_keepalives_and_ends_at_its_lifetime(quiet_app):
    quiet_app.config.update(EVENTS_KEEPALIVE_SECONDS=0.2, EVENTS_MAX_SECONDS=1.5)
    with quiet_app.app_context():
        # queued where nothing will run it
        execution = Execution(language="python", source_code="pass")
        db.session.add(execution)
        db.session.commit()
        execution_id = execution.id

    started = time.monotonic()
    with quiet_app.test_client().get(f"/executions/{execution_id}/events", buffered=False) as rv:
        seen = list(parse_events(rv.response))
    took = time.monotonic() - started

    assert 1.4 < took < 5
    assert [e["data"]["status"] for e in seen if e.get("event") == "status"] == ["QUEUED"]
    assert sum(e.get("comment") == "keep-alive" for e in seen) >= 4
    assert "reconnect" in seen[-1]["comment"]


def test_hub_replays_the_log_after_a_seq_and_forgets_a_finished_run():
    hub = Hub()
    hub.publish("x", "status", "RUNNING")
    hub.publish("x", "stdout", "a")
    hub.publish("x", "stderr", "b")
    assert hub.log_count == 1, "a run's log is kept with nobody listening"
    with hub.subscribe("x", after=1) as subscription:
        assert [(e.seq, e.kind, e.data) for e in subscription.take(0)] == [(2, "stdout", "a"), (3, "stderr", "b")]
        hub.publish("x", "final", "COMPLETED")
        assert [(e.seq, e.kind) for e in subscription.take(1)] == [(4, "final")]
    with hub.subscribe("y") as live:
        hub.publish("y", "stdout", "c")
        assert [e.data for e in live.take(1)] == ["c"]
        assert live.take(0.01) == []
    assert hub.log_count == 1, "y is still running"
    hub.publish("y", "final", "FAILED")
    assert hub.log_count == 0
    assert hub.subscriber_count == 0


# --- through gunicorn: real sockets, real threads --------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    with gunicorn(tmp_path_factory.mktemp("events-server")) as running:
        yield running


def test_print_sleep_print_arrives_as_it_is_written(server):
    status, execution = call(server.url, "POST", "/executions", {"language": "python", "source_code": PRINT_SLEEP_PRINT})
    assert status == 202, execution
    with event_stream(server.url, execution["execution_id"]) as events:
        seen = named(until_final(events))
    received = time.time() - time.monotonic()

    chunks = [e for e in seen if e["event"] == "stdout"]
    final = seen[-1]
    assert final["data"]["status"] == "COMPLETED", final
    assert chunks and chunks[0]["data"]["text"].startswith("first"), seen
    assert "".join(e["data"]["text"] for e in chunks) == final["data"]["stdout"]
    # the program printed time.time(); the stream's clock is monotonic: compare on one clock
    first_at = chunks[0]["at"] + received
    first_printed, second_printed = (float(line.split()[1]) for line in final["data"]["stdout"].splitlines())
    latency = first_at - first_printed
    print(f"first chunk latency {latency * 1000:.1f} ms")
    assert second_printed - first_at > 0.5, "the first line must come while the program sleeps, not with the second"
    assert latency < 0.3


def test_idle_listeners_hold_threads_but_not_runs_or_autosaves(server):
    listeners = 100
    status, sleeper = call(server.url, "POST", "/executions", {"language": "python", "source_code": "import time\ntime.sleep(4)"})
    assert status == 202
    worker = psutil.Process(server.pid).children()[0]
    threads_before, rss_before = worker.num_threads(), worker.memory_info().rss

    streams = [event_stream(server.url, sleeper["execution_id"]) for _ in range(listeners)]
    opened = [s.__enter__() for s in streams]
    try:
        for events in opened:
            assert next(e for e in events if e.get("event") == "status")
        status, health = call(server.url, "GET", "/health/workers")
        assert health["listeners"] == listeners
        threads_held = worker.num_threads() - threads_before
        rss_per_stream = (worker.memory_info().rss - rss_before) / listeners
        print(f"{listeners} open streams: {threads_held} more threads, {rss_per_stream / 1024:.0f} KiB each")
        assert threads_held >= listeners * 0.9

        started = time.monotonic()
        status, session = call(server.url, "POST", "/code-sessions", {"language": "python", "source_code": "print(1)"})
        assert status == 201
        status, saved = call(server.url, "PATCH", f"/code-sessions/{session['session_id']}", {"source_code": 'print("saved")', "version": 1})
        assert status == 200 and saved["version"] == 2
        assert time.monotonic() - started < 3, "an autosave waits for no stream"

        status, run = call(server.url, "POST", f"/code-sessions/{session['session_id']}/run")
        assert status == 202
        deadline = time.monotonic() + 45
        while True:
            status, result = call(server.url, "GET", f"/executions/{run['execution_id']}?wait=10")
            if result["status"] in ("COMPLETED", "FAILED", "TIMEOUT") or time.monotonic() > deadline:
                break
        assert result["status"] == "COMPLETED" and result["stdout"] == "saved\n"

        for events in opened:
            assert until_final(events)[-1]["data"]["status"] == "COMPLETED"
    finally:
        for s in streams:
            s.__exit__(None, None, None)
    deadline = time.monotonic() + 10
    while call(server.url, "GET", "/health/workers")[1]["listeners"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert call(server.url, "GET", "/health/workers")[1]["listeners"] == 0

