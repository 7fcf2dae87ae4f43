"""Verdicts of a test case, and the one table that says which is worse."""
from __future__ import annotations

PASSED = "PASSED"
WRONG_ANSWER = "WRONG_ANSWER"
RUNTIME_ERROR = "RUNTIME_ERROR"
TIME_LIMIT = "TIME_LIMIT"
MEMORY_LIMIT = "MEMORY_LIMIT"
OUTPUT_LIMIT = "OUTPUT_LIMIT"
SKIPPED = "SKIPPED"

# worst first: the overall verdict of a grade is the worst of its cases'. A program that crashed
# or was stopped by a limit did not get as far as answering, so it ranks below a wrong answer; a
# case never run (SKIPPED) ranks below PASSED so that an unfinished grade never looks green.
PRIORITY: tuple[str, ...] = (RUNTIME_ERROR, MEMORY_LIMIT, TIME_LIMIT, OUTPUT_LIMIT, WRONG_ANSWER, SKIPPED, PASSED)
ALL = frozenset(PRIORITY)

# what a hidden case says: the verdict in words, nothing of its input or output
GENERIC_MESSAGES = {
    PASSED: "Passed",
    WRONG_ANSWER: "Wrong answer",
    RUNTIME_ERROR: "The program ended with an error",
    TIME_LIMIT: "Time limit exceeded",
    MEMORY_LIMIT: "Memory limit exceeded",
    OUTPUT_LIMIT: "Output limit exceeded",
    SKIPPED: "Not run",
}


def worst(verdicts: list[str]) -> str:
    """The worst verdict of the list by PRIORITY; SKIPPED for an empty one."""
    if not verdicts:
        return SKIPPED
    return min(verdicts, key=PRIORITY.index)
