"""What crosses between the candidate and the tests: plain data of exact types, both ways, through the sandbox.

The codec itself (harness/wire.py) gets Hypothesis properties: every plain value survives a round trip with its
exact types, and no bytes whatever decode to anything but plain data.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.verify import Outcome
from training.verify.harness import wire

PLAIN_TYPES = (type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)

HASHABLE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda children: st.tuples(children, children) | st.frozensets(children, max_size=3),
    max_leaves=6,
)
PLAIN = st.recursive(
    HASHABLE | st.floats() | st.complex_numbers(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children)
        | st.dictionaries(HASHABLE, children, max_size=3)
        | st.sets(HASHABLE, max_size=3)
    ),
    max_leaves=20,
)


def same(a, b) -> bool:
    """Equal with exactly the same types all the way down (NaN equal to NaN, -0.0 told from 0.0)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if type(a) is complex:
        return same(a.real, b.real) and same(a.imag, b.imag)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def only_plain(value) -> bool:
    if type(value) not in PLAIN_TYPES:
        return False
    if type(value) in (list, tuple, set, frozenset):
        return all(only_plain(v) for v in value)
    if type(value) is dict:
        return all(only_plain(k) and only_plain(v) for k, v in value.items())
    return True


@settings(max_examples=300)
@given(PLAIN)
def test_plain_values_round_trip_with_exact_types(value):
    assert same(wire.decode(wire.encode(value)), value)


@settings(max_examples=300)
@given(st.binary(max_size=200) | st.text(alphabet='[]{}",:0123456789tsfdbcIe.-NaInfy truefalsenull', max_size=60))
def test_no_bytes_decode_to_anything_but_plain_data(payload):
    data = payload.encode() if isinstance(payload, str) else payload
    try:
        value = wire.decode(data)
    except wire.NotPlain:
        return
    assert only_plain(value)


@pytest.mark.parametrize(
    "value",
    [
        True,
        2**100,
        -(2**64),
        1.5,
        float("inf"),
        -0.0,
        1 + 2j,
        "é\ud800",
        b"\x00\xff",
        (1, [2]),
        {(1, 2): {3}},
        frozenset({1}),
    ],
)
def test_values_cross_from_the_candidate_with_their_exact_types(run_functional, value):
    tests = [f"v = value()\nassert type(v) is {type(value).__name__} and repr(v) == {repr(value)!r}, repr(v)"]
    source = "float('inf')" if value == float("inf") else repr(value)
    result = run_functional(f"def value():\n    return {source}\n", tests)
    assert result.passed, result.tests


def test_arguments_cross_to_the_candidate_with_their_exact_types(run_functional):
    code = "def kinds(*args, **kwargs):\n    return [type(a).__name__ for a in args] + sorted(kwargs)\n"
    test = (
        "assert kinds(True, 1, 1.0, (1,), {1}, b'x', k=None) == ['bool', 'int', 'float', 'tuple', 'set', 'bytes', 'k']"
    )
    assert run_functional(code, [test]).passed


def test_exceptions_cross_as_builtin_types_or_as_candidate_errors(run_functional):
    code = "class Custom(Exception):\n    pass\ndef f(x):\n    if x < 0:\n        raise ValueError('negative')\n    raise Custom('mine')\n"
    tests = [
        "try:\n    f(-1)\n    assert False\nexcept ValueError as exc:\n    assert str(exc) == 'negative'",
        "f(1)",
    ]
    result = run_functional(code, tests)
    assert [t.outcome for t in result.tests] == [Outcome.PASSED, Outcome.CRASHED]
    assert "Custom: mine" in result.tests[1].detail


def test_what_cannot_cross_fails_that_test_with_a_clear_detail(run_functional):
    code = "def gen():\n    yield 1\ndef f(callback):\n    return callback(1)\n"
    result = run_functional(code, ["assert list(gen()) == [1]", "assert f(lambda x: x) == 1"])
    assert [t.outcome for t in result.tests] == [Outcome.CRASHED, Outcome.CRASHED]
    assert "generator" in result.tests[0].detail and "only plain data crosses" in result.tests[0].detail
    assert "argument 0 is a builtins.function" in result.tests[1].detail


def test_in_place_functions_have_their_changes_copied_back(run_functional):
    code = "def sort_in_place(xs):\n    xs.sort()\ndef tag(d):\n    d['seen'] = True\n"
    tests = ["xs = [3, 1, 2]\nsort_in_place(xs)\nassert xs == [1, 2, 3]", "d = {}\ntag(d)\nassert d == {'seen': True}"]
    assert run_functional(code, tests).passed
