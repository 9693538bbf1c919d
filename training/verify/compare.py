"""Comparing a program's stdout with the expected output, the way competitive-programming judges do.

Lines are compared after stripping trailing whitespace and dropping trailing blank lines; within a line, tokens are
split on whitespace, and two tokens match if they are equal or both parse as numbers within a tolerance (absolute
or relative), so "0.5000000001" matches "0.5" and "1e3" matches "1000".
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Comparison:
    equal: bool
    detail: str = ""  # where the first difference is, for people reading results


def compare_output(actual: str, expected: str, tolerance: float = 1e-6) -> Comparison:
    actual_lines, expected_lines = _lines(actual), _lines(expected)
    if len(actual_lines) != len(expected_lines):
        return Comparison(False, f"expected {len(expected_lines)} lines, got {len(actual_lines)}")
    for number, (got, want) in enumerate(zip(actual_lines, expected_lines), start=1):
        if not _line_matches(got, want, tolerance):
            return Comparison(False, f"line {number}: expected {want[:80]!r}, got {got[:80]!r}")
    return Comparison(True)


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _line_matches(got: str, want: str, tolerance: float) -> bool:
    if got == want:
        return True
    got_tokens, want_tokens = got.split(), want.split()
    if len(got_tokens) != len(want_tokens):
        return False
    return all(_token_matches(g, w, tolerance) for g, w in zip(got_tokens, want_tokens))


def _token_matches(got: str, want: str, tolerance: float) -> bool:
    if got == want:
        return True
    got_number, want_number = _number(got), _number(want)
    if got_number is None or want_number is None:
        return False
    return math.isclose(got_number, want_number, rel_tol=tolerance, abs_tol=tolerance)


def _number(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
