"""Comparing a program's stdout with the expected output, outside the sandbox, strictly.

Lines are compared after turning CRLF into LF, stripping trailing whitespace and dropping trailing blank lines.
Within a line, tokens are split on ASCII whitespace and matched one by one:

- equal text always matches;
- an **integer** expected token (``-12``, ``007``) matches only an integer token of exactly the same value, however
  long (no float rounding: ``10000000000000000001`` is not ``10000000000000000000``);
- a **decimal or exponent** expected token (``0.5``, ``1e-9``) matches a decimal, exponent or integer token within
  1e-6, absolute or relative;
- ``inf``, ``nan`` and their spellings match only when the expected token is one of them, with the same value;
- nothing else is a number: underscores (``1_2``), non-ASCII digits, hex and surrounding text are compared as text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

INTEGER = re.compile(r"[+-]?[0-9]+")
DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
NON_FINITE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
TOKEN = re.compile(r"[^ \t\n\r\f\v]+")
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Comparison:
    equal: bool
    detail: str = ""  # where the first difference is, for people reading results


def compare_output(actual: str, expected: str, tolerance: float = TOLERANCE) -> Comparison:
    actual_lines, expected_lines = _lines(actual), _lines(expected)
    if len(actual_lines) != len(expected_lines):
        return Comparison(False, f"expected {len(expected_lines)} lines, got {len(actual_lines)}")
    for number, (got, want) in enumerate(zip(actual_lines, expected_lines), start=1):
        if not _line_matches(got, want, tolerance):
            return Comparison(False, f"line {number}: expected {want[:80]!r}, got {got[:80]!r}")
    return Comparison(True)


def _lines(text: str) -> list[str]:
    lines = [line.rstrip(" \t\r\f\v") for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _line_matches(got: str, want: str, tolerance: float) -> bool:
    if got == want:
        return True
    got_tokens, want_tokens = TOKEN.findall(got), TOKEN.findall(want)
    if len(got_tokens) != len(want_tokens):
        return False
    return all(token_matches(g, w, tolerance) for g, w in zip(got_tokens, want_tokens))


def token_matches(got: str, want: str, tolerance: float = TOLERANCE) -> bool:
    if got == want:
        return True
    if INTEGER.fullmatch(want):
        return INTEGER.fullmatch(got) is not None and _same_integer(got, want)
    if NON_FINITE.fullmatch(want):
        return NON_FINITE.fullmatch(got) is not None and _same_non_finite(float(got), float(want))
    if DECIMAL.fullmatch(want):
        return DECIMAL.fullmatch(got) is not None and _close(float(got), float(want), tolerance)
    return False


def _same_integer(got: str, want: str) -> bool:
    """Exact, for any length: the sign and the digits without leading zeros (-0 is 0)."""
    got_negative, got_digits = _sign_and_digits(got)
    want_negative, want_digits = _sign_and_digits(want)
    return got_digits == want_digits and (got_negative == want_negative or got_digits == "0")


def _sign_and_digits(token: str) -> tuple[bool, str]:
    negative = token.startswith("-")
    return negative, token.lstrip("+-").lstrip("0") or "0"


def _same_non_finite(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or got == want


def _close(got: float, want: float, tolerance: float) -> bool:
    if not (math.isfinite(got) and math.isfinite(want)):  # beyond a double's range: only equal text matched
        return False
    return abs(got - want) <= tolerance or abs(got - want) <= tolerance * abs(want)
