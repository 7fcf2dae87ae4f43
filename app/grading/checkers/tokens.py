"""tokens (the default): the same whitespace-separated tokens on the same lines; blank lines and
the amount of whitespace do not matter."""
from __future__ import annotations

from .common import PASS, Check, difference, wrong


def token_lines(text: str) -> list[list[str]]:
    """The tokens of each line that has any (blank lines do not count)."""
    return [tokens for tokens in (line.split() for line in text.splitlines()) if tokens]


def check(expected: str, actual: str, options: dict) -> Check:
    want, got = token_lines(expected), token_lines(actual)
    for index in range(max(len(want), len(got))):
        left = want[index] if index < len(want) else None
        right = got[index] if index < len(got) else None
        if left != right:
            return wrong(difference(index + 1, _join(left), _join(right)))
    return PASS


def _join(tokens: list[str] | None) -> str | None:
    return None if tokens is None else " ".join(tokens)
