"""Checkers: pure functions that compare a case's expected output with the program's, one per file.

Each is `check(expected, actual, options) -> Check`. The `program` checker is not here: it runs a
program in a sandbox of its own (app/grading/program_checker.py).
"""
from __future__ import annotations

from collections.abc import Callable

from . import exact, floats, lines, tokens, unordered_lines
from .common import Check

Checker = Callable[[str, str, dict], Check]

BY_TYPE: dict[str, Checker] = {
    "exact": exact.check,
    "lines": lines.check,
    "tokens": tokens.check,
    "float": floats.check,
    "unordered_lines": unordered_lines.check,
}
# the checker of a suite that names none
DEFAULT = "tokens"
PROGRAM = "program"
TYPES = (*BY_TYPE, PROGRAM)

__all__ = ["BY_TYPE", "Check", "DEFAULT", "PROGRAM", "TYPES"]
