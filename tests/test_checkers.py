"""The checkers, the verdict table and the program checker's framing: pure functions, no sandbox."""
from __future__ import annotations

import math

import pytest

from app.grading import checkers, program_checker, verdicts


def check(kind: str, expected: str, actual: str, **options: object):
    return checkers.BY_TYPE[kind](expected, actual, options)


def test_exact_is_byte_for_byte():
    assert check("exact", "1 2\n", "1 2\n").passed
    assert not check("exact", "1 2\n", "1 2").passed
    assert not check("exact", "1 2\n", "1  2\n").passed
    wrong = check("exact", "a\nb\n", "a\nc\n")
    assert wrong.score == 0 and wrong.diff == {"line": 2, "expected": "b", "actual": "c"}


def test_lines_ignores_trailing_whitespace_and_trailing_blank_lines_only():
    assert check("lines", "a b\nc\n", "a b   \nc\t\n\n\n").passed
    assert not check("lines", "a b\nc\n", "a  b\nc\n").passed
    assert not check("lines", "a\nc\n", "a\n\nc\n").passed
    assert check("lines", "a\nb", "a\nb\n").diff is None
    missing = check("lines", "a\nb\n", "a\n")
    assert missing.diff == {"line": 2, "expected": "b", "actual": None}
    assert "ended early" in missing.message


def test_tokens_compares_tokens_line_by_line():
    assert check("tokens", "1 2\n3\n", "  1   2 \n\n3").passed
    # line-aware: the same tokens on other lines are a wrong answer
    assert not check("tokens", "1 2\n3\n", "1\n2 3\n").passed
    wrong = check("tokens", "1 2\n3\n", "1 2\n4\n")
    assert wrong.diff == {"line": 2, "expected": "3", "actual": "4"}
    assert "expected '3', got '4'" in wrong.message
    assert "unexpected extra output" in check("tokens", "1\n", "1\n2\n").message


def test_float_tolerances_and_nan_never_passes():
    assert check("float", "0.333333\n", "0.3333331\n").passed
    assert not check("float", "1.0\n", "1.1\n").passed
    assert check("float", "1.0\n", "1.1\n", abs_tolerance=0.2).passed
    assert check("float", "1000000\n", "1000001\n", rel_tolerance=1e-5).passed
    assert not check("float", "1000000\n", "1000100\n", rel_tolerance=1e-5).passed
    assert not check("float", "nan\n", "nan\n").passed
    assert not check("float", "1\n", "nan\n", abs_tolerance=math.inf).passed
    assert not check("float", "1\n", "inf\n", abs_tolerance=1e9).passed
    assert check("float", "inf\n", "inf\n").passed
    # words are compared as words, and the count of tokens matters
    assert check("float", "x = 1.5\n", "x = 1.5000001\n").passed
    assert not check("float", "y = 1.5\n", "x = 1.5\n").passed
    assert not check("float", "1 2\n", "1\n").passed


def test_unordered_lines_any_order_same_multiset():
    assert check("unordered_lines", "a\nb\nb\n", "b\na\nb  \n\n").passed
    assert not check("unordered_lines", "a\nb\nb\n", "a\nb\n").passed
    assert "missing" in check("unordered_lines", "a\nb\n", "a\n").message
    assert "not expected" in check("unordered_lines", "a\n", "a\nz\n").message


def test_long_lines_are_cut_in_a_difference():
    wrong = check("lines", "x" * 10_000, "y" * 10_000)
    assert len(wrong.diff["expected"]) <= 201 and len(wrong.message) < 1000


def test_the_worst_verdict_wins_by_one_table():
    assert verdicts.worst([verdicts.PASSED, verdicts.WRONG_ANSWER, verdicts.TIME_LIMIT]) == verdicts.TIME_LIMIT
    assert verdicts.worst([verdicts.PASSED, verdicts.SKIPPED]) == verdicts.SKIPPED
    assert verdicts.worst([verdicts.PASSED] * 3) == verdicts.PASSED
    assert verdicts.worst([]) == verdicts.SKIPPED
    assert verdicts.worst(list(verdicts.PRIORITY)) == verdicts.RUNTIME_ERROR
    assert set(verdicts.GENERIC_MESSAGES) == verdicts.ALL


def test_program_checker_framing_and_answers():
    assert program_checker.framed("1 2", "3", "é") == b"3\n1 21\n32\n\xc3\xa9"
    assert program_checker.parse("1\nfine\n").score == 1.0
    assert program_checker.parse("0.5\n").message == "Wrong answer"
    assert program_checker.parse("1").message == "Accepted"
    for nonsense in ("", "yes\n", "1.5\n", "-0.1\n", "nan\n"):
        assert program_checker.parse(nonsense) is None


@pytest.mark.parametrize("kind", sorted(checkers.BY_TYPE))
def test_every_checker_passes_identical_output(kind):
    assert check(kind, "1 2\n3.5\n", "1 2\n3.5\n").passed
