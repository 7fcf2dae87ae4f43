"""Waiting for a condition in a test: poll it, and fail the test past a deadline."""
from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], seconds: float, what: str) -> object:
    """Poll predicate until it returns something truthy; fail the test past the deadline."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.05)
