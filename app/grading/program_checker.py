"""The `program` checker: a checker program of the suite's author, in any engine language, run in a
sandbox of its own for each case.

It reads three sections from its stdin, each a line with a byte count followed by that many bytes:
the case's input, the expected output, the program's output. It answers on stdout: a score from 0
to 1 on the first line, and a message on the lines after (optional). For example, in Python:

    import sys
    def section(): return sys.stdin.buffer.read(int(sys.stdin.buffer.readline())).decode()
    given, expected, actual = section(), section(), section()
    print(1 if actual.split() == expected.split() else 0)
"""
from __future__ import annotations

import logging
import math

from ..sandbox import BY_NAME, Limits, Sandbox, SandboxError
from .checkers import Check

log = logging.getLogger(__name__)

MESSAGE_MAX_CHARS = 1000


def framed(given: str, expected: str, actual: str) -> bytes:
    """The checker's stdin: each section as '<byte count>\\n<bytes>'."""
    out = bytearray()
    for text in (given, expected, actual):
        data = text.encode()
        out += f"{len(data)}\n".encode() + data
    return bytes(out)


def parse(stdout: str) -> Check | None:
    """The checker's answer, or None if it did not give a score from 0 to 1."""
    first, _, rest = stdout.lstrip("\n").partition("\n")
    try:
        score = float(first.strip())
    except ValueError:
        return None
    if math.isnan(score) or not 0.0 <= score <= 1.0:
        return None
    message = rest.strip()[:MESSAGE_MAX_CHARS] or ("Accepted" if score >= 1.0 else "Wrong answer")
    return Check(score, message)


def check(
    sandbox: Sandbox, checker: dict, given: str, expected: str, actual: str, limits: Limits, slot: int
) -> Check | None:
    """Run the checker program on one case; None when it failed (crashed, timed out, answered nonsense)."""
    language = BY_NAME[checker["language"]]
    try:
        result = sandbox.run(language, checker["source_code"].encode(), framed(given, expected, actual), limits, slot)
    except SandboxError as error:
        log.error("the checker program could not run: %s", error)
        return None
    if result.reason is not None:
        # the reason only: the checker's stderr may quote a hidden case
        log.warning("a checker program failed: %s", result.reason)
        return None
    return parse(result.stdout)
