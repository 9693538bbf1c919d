"""Stdout comparison: exact for integers and text, a tolerance only where the expected token is a decimal."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from training.verify.compare import compare_output, token_matches


@pytest.mark.parametrize(
    "actual, expected",
    [
        ("3\n", "3"),  # trailing newline
        ("1 2  3   \n\n\n", "1 2 3"),  # runs of spaces inside a line, trailing blanks
        ("a\r\nb\r\n", "a\nb"),  # Windows line ends
        ("0.5000000001", "0.5"),  # a decimal within tolerance
        ("1000", "1e3"),  # the expected token is an exponent: any spelling of the number within tolerance
        ("0.50", "0.5"),
        ("007", "7"),  # an integer of exactly the same value
        ("-0", "0"),
        ("inf", "inf"),
        ("nan", "NaN"),  # non-finite only where the expected token is non-finite itself
        ("123456789012345678901234567890", "123456789012345678901234567890"),
    ],
)
def test_equal_outputs(actual, expected):
    assert compare_output(actual, expected).equal


@pytest.mark.parametrize(
    "actual, expected, where",
    [
        ("4", "3", "line 1"),
        ("0.51", "0.5", "line 1"),  # outside tolerance
        ("1\n2", "1\n2\n3", "3 lines"),  # missing line
        ("1 2", "1 2 3", "line 1"),  # missing token
        ("YES", "yes", "line 1"),  # case matters
        ("inf", "1e400", "line 1"),  # non-finite numbers are not accepted for finite ones
        ("a\n\nb", "a\nb", "lines"),  # a blank line in the middle counts
        ("12345678901234567891", "12345678901234567890", "line 1"),  # integers exactly, beyond 2^53 too
        ("9007199254740993", "9007199254740992", "line 1"),
        ("100000000000000000001", "100000000000000000000", "line 1"),  # the old relative tolerance passed this
        ("1e3", "1000", "line 1"),  # an integer expected: an exponent is not an integer
        ("3.0", "3", "line 1"),
        ("3.0000001", "3", "line 1"),
        ("1_2", "12", "line 1"),  # underscores are text
        ("1_2.0", "12.0", "line 1"),
        ("inf", "3", "line 1"),
        ("nan", "0.5", "line 1"),
        ("infinity", "1e308", "line 1"),
        ("١٢", "12", "line 1"),  # non-ASCII digits
        ("0x10", "16", "line 1"),
        ("1\u20032", "1 2", "line 1"),  # only ASCII whitespace separates tokens
    ],
)
def test_different_outputs_say_where(actual, expected, where):
    comparison = compare_output(actual, expected)
    assert not comparison.equal
    assert where in comparison.detail


@given(st.integers())
def test_an_integer_matches_only_itself(value):
    assert token_matches(str(value), str(value))
    assert not token_matches(str(value + 1), str(value))
    assert not token_matches(str(value) + ".0", str(value))


@given(st.integers(min_value=-(10**40), max_value=10**40), st.integers(min_value=1, max_value=10**6))
def test_distinct_large_integers_never_match(value, delta):
    assert not token_matches(str(value + delta), str(value))


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_a_decimal_matches_its_own_text_and_values_within_tolerance(value):
    want = repr(value) if "e" in repr(value) or "." in repr(value) else repr(value) + ".0"
    assert token_matches(repr(value), want)
    assert token_matches(f"{value:.12e}", want)
    far = value + max(1.0, abs(value)) * 1e-3
    assert not token_matches(repr(far), want)


@given(st.text(alphabet="0123456789_+-.eEinfaINFx ", max_size=12), st.text(alphabet="0123456789.", max_size=8))
def test_nothing_odd_matches_a_finite_number_unless_it_is_one(got, want):
    if token_matches(got.strip() or "x", want or "0"):
        assert "_" not in got and "inf" not in got.lower() and "nan" not in got.lower()


@given(st.lists(st.lists(st.integers(), max_size=5), max_size=5))
def test_whitespace_and_line_ends_do_not_matter_but_tokens_do(rows):
    expected = "\n".join(" ".join(map(str, row)) for row in rows)
    messy = "\r\n".join("  ".join(map(str, row)) + " \t" for row in rows) + "\n\n"
    assert compare_output(messy, expected).equal
    if any(rows):
        changed = [row[:] for row in rows]
        row = next(r for r in changed if r)
        row[0] += 1
        assert not compare_output("\n".join(" ".join(map(str, r)) for r in changed), expected).equal


def test_nan_is_only_accepted_for_nan():
    assert token_matches("nan", "nan") and not token_matches("nan", "0.0")
    assert math.isnan(float("nan"))
