"""unordered_lines: the same lines in any order (each line compared as `lines` does, blank lines ignored)."""
from __future__ import annotations

from collections import Counter

from .common import PASS, Check


def check(expected: str, actual: str, options: dict) -> Check:
    want = Counter(line.rstrip() for line in expected.splitlines() if line.strip())
    got = Counter(line.rstrip() for line in actual.splitlines() if line.strip())
    if want == got:
        return PASS
    missing = want - got
    extra = got - want
    if missing:
        line = next(iter(missing))
        return Check(0.0, f"Wrong answer: the line {line[:200]!r} is missing")
    return Check(0.0, f"Wrong answer: the line {next(iter(extra))[:200]!r} was not expected")
