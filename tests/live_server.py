"""Helpers for tests that talk HTTP to a real engine (tests/servers.py starts it): requests and event streams."""
from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from servers import LiveServer


class Server(NamedTuple):
    url: str
    pid: int  # gunicorn's master; its one worker is its child


@contextmanager
def gunicorn(tmp_path: Path, **settings: object) -> Iterator[Server]:
    """Serve the engine with gunicorn until the block ends, then SIGTERM it. settings become ENGINE_<NAME>."""
    server = LiveServer(tmp_path / "e.db", tmp_path / "gunicorn.log", **settings).start()
    try:
        yield Server(f"http://127.0.0.1:{server.port}", server.process.pid)
    finally:
        server.stop()


def call(base: str, method: str, path: str, body: object = None, headers: dict | None = None) -> tuple[int, dict]:
    """One JSON request; returns (status, body) for errors too."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as rv:
            raw = rv.read()
            return rv.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def parse_events(chunks: Iterable[bytes | str]) -> Iterator[dict]:
    """Server-Sent Events from a body read in pieces: {"event", "id", "data" (parsed JSON), "at"}, or {"comment"}."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            event: dict = {"at": time.monotonic()}
            data: list[str] = []
            for line in block.split("\n"):
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "":
                    event["comment"] = value
                elif name == "data":
                    data.append(value)
                else:
                    event[name] = value
            if data:
                event["data"] = json.loads("\n".join(data))
            yield event


@contextmanager
def event_stream(base: str, execution_id: str, headers: dict | None = None, timeout: float = 30) -> Iterator[Iterator[dict]]:
    """GET /executions/{id}/events over a real socket; yields its events as they arrive (each read bounded by timeout)."""
    host, _, port = base.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request("GET", f"/executions/{execution_id}/events", headers=headers or {})
        response = connection.getresponse()
        assert response.status == 200, response.read()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        yield parse_events(iter(lambda: response.read1(65536), b""))
    finally:
        connection.close()
