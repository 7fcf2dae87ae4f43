"""A run's output reaches the hub coalesced: few events of bounded size, in order, on time, resumable."""
from __future__ import annotations

import threading
import time

import pytest
from support.sse import parse_events

from app.output_batching import Flusher, OutputBatcher

# a print loop of ~84 KB (under the 100 KiB cap), then a pause that keeps the run's log open
FLOOD = """\
import time
for n in range(4000):
    print(f"line {n:>5} of the flood")
time.sleep(1.5)
print("end")
"""
STREAM_DEADLINE_SECONDS = 60


class Recorder:
    """A publish function that remembers what it was given, and when."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object, float]] = []
        self.published = threading.Event()

    def __call__(self, kind: str, data: object) -> None:
        self.events.append((kind, data, time.monotonic()))
        self.published.set()


def test_a_tight_loop_of_tiny_chunks_becomes_a_few_events_in_order():
    recorder = Recorder()
    batcher = OutputBatcher(recorder, Flusher(), flush_after=0.02, max_chars=1000)
    written = [f"line {n}\n" for n in range(5000)]
    for text in written:
        batcher.add("stdout", text)
    batcher.close()

    texts = [data for kind, data, _ in recorder.events]
    assert "".join(texts) == "".join(written)
    assert {kind for kind, _, _ in recorder.events} == {"stdout"}
    assert all(len(text) <= 1000 for text in texts)
    # ~44,000 characters: the size bound cuts them into about 45 events, not 5,000
    assert len(texts) <= 60, len(texts)


def test_the_interleaving_of_stdout_and_stderr_is_kept():
    recorder = Recorder()
    batcher = OutputBatcher(recorder, Flusher(), flush_after=10.0, max_chars=1000)
    for kind, text in [("stdout", "a"), ("stdout", "b"), ("stderr", "C"), ("stdout", "d")]:
        batcher.add(kind, text)
    batcher.event("status", "DONE")
    assert [(kind, data) for kind, data, _ in recorder.events] == [
        ("stdout", "ab"), ("stderr", "C"), ("stdout", "d"), ("status", "DONE"),
    ]


def test_a_lone_chunk_is_published_by_the_flusher_without_further_writes():
    recorder = Recorder()
    batcher = OutputBatcher(recorder, Flusher(), flush_after=0.02, max_chars=1000)
    written_at = time.monotonic()
    batcher.add("stdout", "prompt> ")
    assert recorder.published.wait(5), "the held chunk was never published"
    [(kind, data, at)] = recorder.events
    assert (kind, data) == ("stdout", "prompt> ")
    # held for its flush window, not until the next write (generous: the machine is shared)
    assert at - written_at < 1.0
    # nothing is published twice when the run then ends
    batcher.close()
    assert len(recorder.events) == 1


@pytest.fixture
def config(config):
    config["EVENTS_MAX_SECONDS"] = STREAM_DEADLINE_SECONDS
    return config


def open_events(client, execution_id: str, **headers: str):
    rv = client.get(f"/executions/{execution_id}/events", headers=headers, buffered=False)
    assert rv.status_code == 200
    return rv, (event for event in parse_events(rv.response) if "event" in event)


def until_final(events) -> list[dict]:
    seen = []
    for event in events:
        seen.append(event)
        if event["event"] == "final":
            return seen
    raise AssertionError(f"the stream ended without a final event: {seen}")


def test_a_print_flood_reaches_the_stream_as_few_bounded_events_that_resume_exactly(app, client):
    max_chars = app.config["OUTPUT_EVENT_MAX_CHARS"]
    rv = client.post("/executions", json={"language": "python", "source_code": FLOOD})
    assert rv.status_code == 202
    execution_id = rv.json["execution_id"]

    # a first connection replays the run's log from its start
    first, events = open_events(client, execution_id)
    try:
        seen = []
        for event in events:
            seen.append(event)
            if len([e for e in seen if e["event"] == "stdout"]) == 3:
                break
        # reconnect after the second chunk while the run is still going (it sleeps after the flood)
        chunks = [e for e in seen if e["event"] == "stdout"]
        second, resumed = open_events(client, execution_id, **{"Last-Event-ID": chunks[1]["id"]})
        try:
            rest = until_final(resumed)
        finally:
            second.close()
        # the first stream, read slowly, still gets every chunk once before the final event
        seen += until_final(events)
    finally:
        first.close()

    final = seen[-1]["data"]
    assert final["status"] == "COMPLETED" and not final["stdout_truncated"]
    chunks = [e for e in seen if e["event"] == "stdout"]
    assert "".join(e["data"]["text"] for e in chunks) == final["stdout"]
    # ~84 KB in 4,000 writes: now a handful of events of at most max_chars
    assert all(len(e["data"]["text"]) <= max_chars for e in chunks)
    assert len(chunks) <= 40, len(chunks)
    # the resumed stream has exactly the chunks past the second, once each
    resumed_chunks = [e for e in rest if e["event"] == "stdout"]
    assert [e["id"] for e in resumed_chunks] == [e["id"] for e in chunks[2:]]
    assert rest[-1]["data"] == final


def test_closing_the_flusher_publishes_what_is_held_and_ends_its_thread():
    recorder = Recorder()
    flusher = Flusher()
    batcher = OutputBatcher(recorder, flusher, flush_after=60.0, max_chars=1000)
    batcher.add("stdout", "held for a minute")
    flusher.close()
    assert [(kind, data) for kind, data, _ in recorder.events] == [("stdout", "held for a minute")]
    assert not any(thread.name == "output-flusher" and thread.is_alive() for thread in threading.enumerate() if thread is flusher._thread)
    # after the close a new chunk is not left waiting for a thread that is gone
    batcher.add("stderr", "late")
    assert recorder.events[-1][:2] == ("stderr", "late")
