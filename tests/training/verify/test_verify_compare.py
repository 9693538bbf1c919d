"""Stdout comparison: whitespace- and float-tolerant, strict about everything else."""

import pytest

from training.verify.compare import compare_output


@pytest.mark.parametrize(
    "actual, expected",
    [
        ("3\n", "3"),  # trailing newline
        ("1 2  3   \n\n\n", "1 2 3"),  # runs of spaces inside a line, trailing blanks
        ("a\r\nb\r\n", "a\nb"),  # Windows line ends
        ("0.5000000001", "0.5"),  # float within tolerance
        ("1e3", "1000"),  # same number, other spelling
        ("-0.0", "0"),
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
        ("inf", "1e400", "line 1"),  # non-finite numbers compare as text only
        ("a\n\nb", "a\nb", "lines"),  # a blank line in the middle counts
    ],
)
def test_different_outputs_say_where(actual, expected, where):
    comparison = compare_output(actual, expected)
    assert not comparison.equal
    assert where in comparison.detail
