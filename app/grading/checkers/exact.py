"""exact: the output must be byte for byte the expected one (line endings included)."""
from __future__ import annotations

from .common import PASS, Check, first_difference, wrong


def check(expected: str, actual: str, options: dict) -> Check:
    if expected == actual:
        return PASS
    diff = first_difference(expected.split("\n"), actual.split("\n"))
    if diff is None:
        return Check(0.0, "Wrong answer: the output differs")
    return wrong(diff)
