"""The Flask test client's helpers: a run's end, by long-poll."""
from __future__ import annotations

import time

from flask.testing import FlaskClient

TERMINAL = {"COMPLETED", "FAILED", "TIMEOUT"}


def wait_terminal(client: FlaskClient, execution_id: str, seconds: float = 30) -> dict:
    """Long-poll until the execution is terminal, failing the test past the deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rv = client.get(f"/executions/{execution_id}?wait=10")
        assert rv.status_code == 200, rv.json
        if rv.json["status"] in TERMINAL:
            return rv.json
    raise AssertionError(f"execution {execution_id} not terminal after {seconds} s")
