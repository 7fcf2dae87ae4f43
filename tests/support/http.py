"""One JSON request to a real engine over HTTP (support/servers.py starts it)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request


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
