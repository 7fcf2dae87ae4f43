"""lines: the same lines, ignoring whitespace at the end of each line and blank lines at the end."""
from __future__ import annotations

from .common import PASS, Check, first_difference, wrong


def normalised(text: str) -> list[str]:
    found = [line.rstrip() for line in text.splitlines()]
    while found and not found[-1]:
        found.pop()
    return found


def check(expected: str, actual: str, options: dict) -> Check:
    diff = first_difference(normalised(expected), normalised(actual))
    return PASS if diff is None else wrong(diff)
