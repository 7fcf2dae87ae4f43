"""What a checker answers, and the first differing line that visible cases show."""
from __future__ import annotations

from dataclasses import dataclass

# a line shown in a difference is cut here: enough to see it, never a whole megabyte
SHOWN_LINE_CHARS = 200


@dataclass(frozen=True)
class Check:
    # 1.0 is a full pass, 0.0 a wrong answer; the program checker may give anything between
    score: float
    message: str
    # {"line": 1-based, "expected": str | None, "actual": str | None}: where the outputs part
    diff: dict | None = None

    @property
    def passed(self) -> bool:
        return self.score >= 1.0


PASS = Check(1.0, "Accepted")


def difference(line: int, expected: str | None, actual: str | None) -> dict:
    return {"line": line, "expected": _cut(expected), "actual": _cut(actual)}


def first_difference(expected: list[str], actual: list[str]) -> dict | None:
    """The first line (1-based) where the two lists differ, with both sides; None if equal."""
    for index in range(max(len(expected), len(actual))):
        left = expected[index] if index < len(expected) else None
        right = actual[index] if index < len(actual) else None
        if left != right:
            return difference(index + 1, left, right)
    return None


def wrong(diff: dict | None, what: str = "line") -> Check:
    """A wrong answer whose message says where, in the words a learner reads."""
    if diff is None:
        return Check(0.0, "Wrong answer")
    expected, actual = diff["expected"], diff["actual"]
    if actual is None:
        told = f"the output ended early; expected {expected!r}"
    elif expected is None:
        told = f"unexpected extra output {actual!r}"
    else:
        told = f"expected {expected!r}, got {actual!r}"
    return Check(0.0, f"Wrong answer at {what} {diff['line']}: {told}", diff)


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= SHOWN_LINE_CHARS:
        return text
    return text[:SHOWN_LINE_CHARS] + "…"
