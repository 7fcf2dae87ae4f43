"""Interactive runs: a line of stdin to the program's reply on the events stream, and cancel to the terminal state.

Synchronous on purpose: one client, one run at a time; the figure is the engine's path, not
the client's concurrency. Floor: the same echo program as a bare local process over a pipe.
"""
from __future__ import annotations

import http.client
import json
import queue
import subprocess
import threading
import time

from .load import summarize
from .server import HOST, Server

ECHO = "while True:\n    line = input()\n    print('echo ' + line)\n"
SPIN = "print('ready', flush=True)\nwhile True:\n    pass\n"
STREAM_TIMEOUT_SECONDS = 30.0


class Events(threading.Thread):
    """GET /executions/{id}/events on its own connection; puts (perf_counter, event, data) on a queue."""

    def __init__(self, port: int, execution_id: str) -> None:
        super().__init__(daemon=True)
        self.connection = http.client.HTTPConnection(HOST, port, timeout=STREAM_TIMEOUT_SECONDS)
        self.connection.request("GET", f"/executions/{execution_id}/events")
        self.response = self.connection.getresponse()
        self.events: queue.Queue[tuple[float, str, dict]] = queue.Queue()

    def run(self) -> None:
        name, data = "", ""
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif line == "" and name:
                    self.events.put((time.perf_counter(), name, json.loads(data)))
                    if name == "final":
                        return
                    name, data = "", ""
        except (OSError, ValueError):
            return

    def until(self, wanted: str, text: str | None = None) -> float:
        """The time the first `wanted` event arrived; with text, the stdout event that completed it
        (a program may print a line in several writes, and each may be a chunk of its own)."""
        deadline = time.monotonic() + STREAM_TIMEOUT_SECONDS
        seen = ""
        while True:
            at, name, data = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if name != wanted:
                continue
            if text is None:
                return at
            seen += data.get("text", "")
            if text in seen:
                return at

    def close(self) -> None:
        self.connection.close()


def call(connection: http.client.HTTPConnection, method: str, path: str, body: object = None) -> tuple[int, dict]:
    connection.request(method, path, body=None if body is None else json.dumps(body), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def start(connection: http.client.HTTPConnection, source: str, interactive: bool) -> str:
    status, body = call(connection, "POST", "/executions", {"language": "python", "source_code": source, "interactive": interactive})
    if status != 202:
        raise RuntimeError(f"POST /executions answered {status}: {body}")
    return body["execution_id"]


def stdin_round_trips(engine: Server, count: int) -> dict[str, object]:
    connection = http.client.HTTPConnection(HOST, engine.port, timeout=STREAM_TIMEOUT_SECONDS)
    execution_id = start(connection, ECHO, interactive=True)
    events = Events(engine.port, execution_id)
    events.start()
    try:
        events.until("stdin_wanted")
        samples = []
        for seq in range(1, count + 1):
            sent = time.perf_counter()
            status, body = call(connection, "POST", f"/executions/{execution_id}/stdin", {"data": f"ping {seq}\n", "seq": seq})
            if status != 202:
                raise RuntimeError(f"POST stdin answered {status}: {body}")
            samples.append(events.until("stdout", f"echo ping {seq}\n") - sent)
        call(connection, "POST", f"/executions/{execution_id}/stdin", {"eof": True, "seq": count + 1})
        events.until("final")
    finally:
        events.close()
        connection.close()
    return summarize(samples)


def cancels(engine: Server, count: int) -> dict[str, object]:
    connection = http.client.HTTPConnection(HOST, engine.port, timeout=STREAM_TIMEOUT_SECONDS)
    samples = []
    try:
        for _ in range(count):
            execution_id = start(connection, SPIN, interactive=False)
            events = Events(engine.port, execution_id)
            events.start()
            try:
                events.until("stdout", "ready")
                sent = time.perf_counter()
                status, body = call(connection, "POST", f"/executions/{execution_id}/cancel")
                if status != 202:
                    raise RuntimeError(f"POST cancel answered {status}: {body}")
                samples.append(events.until("final") - sent)
            finally:
                events.close()
    finally:
        connection.close()
    return summarize(samples)


def bare_pipe_round_trips(count: int) -> dict[str, object]:
    """The floor: the echo program as a local process, a line written to its stdin until its reply is read."""
    process = subprocess.Popen(["python3", "-u", "-c", ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    samples = []
    try:
        for seq in range(1, count + 1):
            sent = time.perf_counter()
            process.stdin.write(f"ping {seq}\n".encode())
            process.stdin.flush()
            process.stdout.readline()
            samples.append(time.perf_counter() - sent)
    finally:
        process.kill()
        process.wait()
    return summarize(samples)


def interactive_section(engine: Server, round_trips: int = 50, cancel_count: int = 10) -> dict[str, object]:
    return {
        "stdin_round_trip_ms": stdin_round_trips(engine, round_trips),
        "bare_pipe_round_trip_ms": bare_pipe_round_trips(round_trips),
        "cancel_to_final_ms": cancels(engine, cancel_count),
    }


def rows(results: dict) -> list[tuple[str, str, str, str]]:
    figures = results.get("interactive") or {}
    trip = figures.get("stdin_round_trip_ms")
    if not trip or trip.get("median") is None:
        return []
    floor = figures["bare_pipe_round_trip_ms"]
    cancel = figures["cancel_to_final_ms"]
    return [
        (
            f"interactive: POST stdin -> reply on the events stream ({trip['n']}), median / p95",
            f"{trip['median']:.2f} / {trip['p95']:.2f} ms",
            f"{floor['median']:.3f} ms",
            "",
        ),
        (f"cancel: POST -> final event ({cancel['n']}), median / p95", f"{cancel['median']:.1f} / {cancel['p95']:.1f} ms", "", ""),
    ]
