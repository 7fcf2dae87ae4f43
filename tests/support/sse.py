"""Reading Server-Sent Events: a body read in pieces, or GET /executions/{id}/events of a real engine."""
from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


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
