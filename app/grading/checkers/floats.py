"""float: tokens as for `tokens`, but numbers match within an absolute or relative tolerance.

A number passes when |actual - expected| <= abs_tolerance or <= rel_tolerance * |expected|.
NaN never passes (not even against an expected NaN), nor does an infinity against a finite value.
"""
from __future__ import annotations

import math

from .common import PASS, Check, difference, wrong
from .tokens import token_lines

DEFAULT_ABS_TOLERANCE = 1e-6
DEFAULT_REL_TOLERANCE = 1e-6


def _number(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def close(expected: str, actual: str, abs_tolerance: float, rel_tolerance: float) -> bool:
    want, got = _number(expected), _number(actual)
    if want is None:
        return expected == actual
    if got is None or math.isnan(want) or math.isnan(got):
        return False
    if math.isinf(want) or math.isinf(got):
        return want == got
    error = abs(got - want)
    return error <= abs_tolerance or error <= rel_tolerance * abs(want)


def check(expected: str, actual: str, options: dict) -> Check:
    abs_tolerance = float(options.get("abs_tolerance", DEFAULT_ABS_TOLERANCE))
    rel_tolerance = float(options.get("rel_tolerance", DEFAULT_REL_TOLERANCE))
    want, got = token_lines(expected), token_lines(actual)
    for index in range(max(len(want), len(got))):
        left = want[index] if index < len(want) else None
        right = got[index] if index < len(got) else None
        if left is None or right is None or len(left) != len(right) or not all(
            close(e, a, abs_tolerance, rel_tolerance) for e, a in zip(left, right)
        ):
            return wrong(difference(index + 1, _join(left), _join(right)))
    return PASS


def _join(tokens: list[str] | None) -> str | None:
    return None if tokens is None else " ".join(tokens)
