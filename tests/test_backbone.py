"""Two real engine instances over one PostgreSQL database, live through LISTEN/NOTIFY (app/live/backbone.py): a
stream on one instance for a run on the other gets its chunks as they are printed, at the same event
ids; stdin and cancel posted to the other instance reach the program; an instance killed mid-run."""
from __future__ import annotations

import threading
import time

import pytest
from support.sse import event_stream
from support.postgres import query
from support.servers import LiveServer
from support.wait import wait_until

# prints a line every 0.3 s: a stream that only got the final event would see them all at once
SLOW_PRINTER = "import time\nfor i in range(6):\n    print('line', i, flush=True)\n    time.sleep(0.3)\n"
ECHO = "while True:\n    line = input()\n    print('got', line, flush=True)\n    if line == 'bye':\n        break\n"


@pytest.fixture
def two_instances(postgres_server, tmp_path):
    url = postgres_server.new_database()
    settings = dict(
        RUN_WORKERS=2, RUN_SLOTS=4, WARM_POOL={}, DATABASE_POOL_SIZE=4,
        ACTIVE_RUNS_PER_SESSION=100, RUNS_PER_MINUTE_PER_SESSION=1000,
        # a watcher tick too slow to pass any latency assertion here: what is fast came by NOTIFY
        BACKBONE_FALLBACK_SECONDS=30.0,
    )
    servers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        servers.append(LiveServer(url, tmp_path / f"{name}.log", env={"ENGINE_INSTANCE_PATH": str(tmp_path / name)}, **settings))
    try:
        for server in servers:
            server.start()
        yield url, servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def ran_on(url: str, execution_id: str, server: LiveServer) -> bool:
    rows = query(url, "SELECT claimed_by FROM executions WHERE id = %s", execution_id)
    return int(rows[0]["claimed_by"].split(":")[1]) in server.worker_pids()


def start(server: LiveServer, source: str, **body: object) -> str:
    status, created, _ = server.call("POST", "/executions", {"language": "python", "source_code": source, **body})
    assert status == 202, created
    return created["execution_id"]


def base(server: LiveServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def test_a_stream_on_one_instance_shows_the_other_instances_run_live_and_resumes_anywhere(two_instances):
    url, a, b = two_instances
    execution_id = start(a, SLOW_PRINTER)
    resumed: list[dict] = []

    def resume_on_a(last_event_id: str) -> None:
        with event_stream(base(a), execution_id, headers={"Last-Event-ID": last_event_id}) as events:
            for event in events:
                resumed.append(event)
                if event.get("event") == "final":
                    return

    seen: list[dict] = []
    resumer = None
    with event_stream(base(b), execution_id) as events:
        for event in events:
            seen.append(event)
            if event.get("event") == "stdout" and resumer is None:
                # the same id means the same place on the instance running the program
                resumer = threading.Thread(target=resume_on_a, args=(event["id"],))
                resumer.start()
            if event.get("event") == "final":
                break
    resumer.join(30)
    assert ran_on(url, execution_id, a), "the run was meant to be the other instance's"
    chunks = [event for event in seen if event.get("event") == "stdout"]
    final = next(event for event in seen if event.get("event") == "final")
    assert final["data"]["stdout"] == "".join(f"line {i}\n" for i in range(6))
    assert "".join(chunk["data"]["text"] for chunk in chunks) == final["data"]["stdout"]
    # live: several chunks, the first well before the end
    assert len(chunks) >= 3, seen
    assert final["at"] - chunks[0]["at"] > 0.8, seen
    # the resumed stream on the other instance went on right after the chunk it was given
    after_first = "".join(chunk["data"]["text"] for chunk in chunks[1:])
    assert "".join(e["data"]["text"] for e in resumed if e.get("event") == "stdout") == after_first, resumed
    assert [e["id"] for e in resumed if e.get("event") == "stdout"] == [c["id"] for c in chunks[1:]]


def test_stdin_and_cancel_posted_to_the_other_instance_reach_the_program(two_instances):
    url, a, b = two_instances
    execution_id = start(a, ECHO, interactive=True)
    wait_until(lambda: b.call("GET", f"/executions/{execution_id}")[1]["status"] == "RUNNING", 30, "the run to start")
    with event_stream(base(b), execution_id) as events:
        sent_at = time.monotonic()
        status, sent, _ = b.call("POST", f"/executions/{execution_id}/stdin", {"data": "hello\n"})
        assert status == 202, sent
        echoed = next(event for event in events if event.get("event") == "stdout")
        assert echoed["data"]["text"] == "got hello\n"
        # far inside the watcher's 30 s fallback: the chunk went by NOTIFY, and the echo came back the same way
        assert echoed["at"] - sent_at < 2.0
        status, stopped, _ = b.call("POST", f"/executions/{execution_id}/cancel")
        assert status == 202, stopped
        cancel_at = time.monotonic()
        final = next(event for event in events if event.get("event") == "final")
        assert final["at"] - cancel_at < 2.0
    assert (final["data"]["status"], final["data"]["error"]) == ("FAILED", "cancelled"), final
    assert "got hello\n" in final["data"]["stdout"]
    assert ran_on(url, execution_id, a)


def test_a_long_poll_on_one_instance_learns_of_the_other_instance_being_killed(two_instances):
    url, a, b = two_instances
    execution_id = start(a, "import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    with event_stream(base(b), execution_id) as events:
        assert next(event for event in events if event.get("event") == "stdout")["data"]["text"] == "started\n"
    assert ran_on(url, execution_id, a)
    a.kill9()
    # b's reaper sees the claimer's pid gone (same host) and ends the run: its long-poll answers
    body, _ = b.poll_terminal(execution_id, seconds=30, wait=20)
    assert (body["status"], body["error"]) == ("FAILED", "interrupted"), body
    assert body["stdout"] == "" or body["stdout"].startswith("started")


def test_a_mirrored_log_keeps_the_running_process_ids():
    from app.live.hub import Hub

    hub = Hub()
    with hub.subscribe("x", after=0) as subscription:
        hub.mirror("x", "status", "RUNNING", 1)
        hub.mirror("x", "stdout", "a", 2)
        # a duplicate (the same seq again) is dropped; a gap is padded so later seqs stay aligned
        hub.mirror("x", "stdout", "a", 2)
        hub.mirror("x", "stdout", "c", 4)
        hub.mirror("x", "final", "COMPLETED", 5)
        events = subscription.take(0)
    assert [(e.kind, e.data, e.seq) for e in events] == [
        ("status", "RUNNING", 1), ("stdout", "a", 2), ("gap", None, 3), ("stdout", "c", 4), ("final", "COMPLETED", 5),
    ]


def test_a_big_event_goes_in_parts_under_the_notify_limit_and_comes_back_whole():
    import json

    from app.live.backbone import PAYLOAD_MAX_BYTES, Backbone, Handlers, split_payloads

    text = "é\n\u0001" * 10_000
    payloads = split_payloads({"t": "e", "e": "x", "k": "stdout", "d": text, "s": 7, "o": "elsewhere"})
    assert len(payloads) > 1 and all(len(p.encode()) < PAYLOAD_MAX_BYTES for p in payloads)
    got: list[tuple] = []
    backbone = Backbone("", "here", Handlers(event=lambda *a: got.append(a), cancel=print, stdin=print, queued=print))
    for payload in reversed(payloads):
        backbone._receive(payload)
    assert got == [("x", "stdout", text, 7)]
    # this process's own notifications are not fed back to it
    backbone._receive(json.dumps({"t": "e", "e": "x", "k": "stdout", "d": "z", "s": 8, "o": "here"}))
    assert len(got) == 1


def test_every_worker_of_one_box_streams_a_run_live_over_sqlite(tmp_path):
    # make run's shape: several workers over one SQLite file; a stream lands on whichever worker accepts it
    server = LiveServer(tmp_path / "engine.db", tmp_path / "server.log", workers=2, WARM_POOL={})
    server.start()
    try:
        execution_id = start(server, SLOW_PRINTER)
        results: list[list[dict]] = []

        def watch() -> None:
            with event_stream(base(server), execution_id) as events:
                seen = []
                for event in events:
                    seen.append(event)
                    if event.get("event") == "final":
                        break
                results.append(seen)

        watchers = [threading.Thread(target=watch) for _ in range(12)]
        for watcher in watchers:
            # one at a time: each connection is accepted by whichever worker is free, not all by one
            watcher.start()
            time.sleep(0.05)
        for watcher in watchers:
            watcher.join(30)
        assert len(results) == 12
        for seen in results:
            chunks = [event for event in seen if event.get("event") == "stdout"]
            final = next(event for event in seen if event.get("event") == "final")
            # live on every stream, whichever worker answered it: chunks well before the end
            assert chunks and final["at"] - chunks[0]["at"] > 0.5, seen
    finally:
        server.stop()
