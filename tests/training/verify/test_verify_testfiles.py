"""Reading tests files and checking jobs: malformed tests are a usage error naming the entry, never a pass.

Pure parsing (no sandbox), plus Hypothesis properties over the parser and the JSON loader.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.errors import UserError
from training.verify import StdioCase, functional_job, stdio_job
from training.verify.formats import MalformedTests
from training.verify.testfiles import load_job, split_python_tests


def write(tmp_path, tests: str, name: str = "tests.py", code: str = "def f(x):\n    return x\n"):
    (tmp_path / "sol.py").write_text(code)
    (tmp_path / name).write_text(tests)
    return tmp_path / "sol.py", tmp_path / name


def test_python_test_files_split_into_setup_and_tests():
    source = "import math\nassert f(1) == 2\ndef helper():\n    return 3\nassert f(helper())\n"
    setup, tests = split_python_tests(source)
    assert setup == "import math\ndef helper():\n    return 3"
    assert tests == ("assert f(1) == 2", "assert f(helper())")


def test_pytest_style_functions_and_classes_are_tests():
    source = (
        "import math\n"
        "def test_one():\n    assert f(1) == 1\n"
        "def helper():\n    return 2\n"
        "class TestGroup:\n    def test_two(self):\n        assert f(2) == helper()\n"
        "    def other(self):\n        pass\n"
        "assert f(3) == 3\n"
    )
    setup, tests = split_python_tests(source)
    assert tests == ("test_one()", "TestGroup().test_two()", "assert f(3) == 3")
    assert "def test_one" in setup and "class TestGroup" in setup


@pytest.mark.parametrize(
    "source, message",
    [
        ("def test_x(tmp_path):\n    assert True\n", "test_x takes arguments"),
        ("import pytest\n@pytest.mark.parametrize('a', [1])\ndef test_y(a):\n    assert a\n", "test_y takes"),
        ("class TestZ:\n    def test_m(self, fixture):\n        pass\n", "TestZ.test_m takes"),
        ("async def test_a():\n    pass\n", "test_a is async"),
    ],
)
def test_pytest_features_the_verifier_cannot_provide_are_named(source, message):
    with pytest.raises(UserError, match=message):
        split_python_tests(source)


def test_many_asserts_split_by_offsets_not_by_rescanning_the_file(monkeypatch):
    # ast.get_source_segment re-splits the whole file on every call: n asserts cost O(n^2) (10,000 took 212 s).
    import ast

    monkeypatch.setattr(ast, "get_source_segment", lambda *a, **k: pytest.fail("quadratic slicing"))
    source = "".join(f"assert f({i}) == {i}\n" for i in range(10_000))
    _, tests = split_python_tests(source)
    assert len(tests) == 10_000 and tests[-1] == "assert f(9999) == 9999"


def test_non_ascii_source_is_sliced_by_character_not_byte():
    setup, tests = split_python_tests("s = 'héllo'\nassert f('ü') == 'ü'\n")
    assert setup == "s = 'héllo'" and tests == ("assert f('ü') == 'ü'",)


@pytest.mark.parametrize(
    "content, message",
    [
        ("null", "holds null"),
        ("42", "holds int"),
        ('"just a string"', "holds str"),
        ("[[1, 2]]", "stdio test 0 must be an object"),
        ('[{"input": 1, "output": "1"}]', "its input must be a string"),
        ('[{"input": "1"}]', "stdio test 0 must be an object"),
        ('{"format": "functional", "tests": [1, true, {"input": "x", "output": "y"}]}', "test 0 must be a string"),
        ('{"format": "functional", "tests": ["assert f(1) == 1", "x == 1"]}', "test 1 checks nothing"),
        ('{"format": "functional", "tests": ["assert f(1) == 1", "assert ("]}', "test 1 is not valid Python"),
        ('{"format": "functional", "tests": ["assert f(1)"], "setup": 5}', "setup must be a string"),
        ('[{"input": "\\ud800", "output": "1"}]', "stdio test 0's input is not valid text"),
        ('{"tests": []}', "non-empty"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_json_tests_name_the_entry(tmp_path, content, message):
    code, tests = write(tmp_path, content, "tests.json")
    with pytest.raises(UserError, match=message):
        load_job(code, tests)


def test_stdio_cases_run_as_functional_are_refused(tmp_path):
    code, tests = write(tmp_path, json.dumps([{"input": "1", "output": "1"}]), "cases.json")
    with pytest.raises(UserError, match="test 0 must be a string of Python, got dict"):
        load_job(code, tests, "functional")


def test_load_job_reads_stdio_json(tmp_path):
    code, tests = write(tmp_path, json.dumps([{"input": "1", "output": "1"}]), "cases.json")
    job = load_job(code, tests)
    assert job.format == "stdio" and job.tests == (StdioCase("1", "1"),)


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_device_files_are_refused_without_reading_them(tmp_path, path):
    code, _ = write(tmp_path, "assert f(1) == 1\n")
    with pytest.raises(UserError, match="not a regular file"):
        load_job(code, tmp_path.__class__(path))


def test_the_api_checks_jobs_too():
    with pytest.raises(MalformedTests, match="test 1 must be a string"):
        functional_job("", ["assert True", 3])
    with pytest.raises(MalformedTests, match="stdio test 0 must be an"):
        stdio_job("", ["not a pair"])
    with pytest.raises(MalformedTests, match="no tests"):
        functional_job("", [])


# --- properties -------------------------------------------------------------------------------------------------

SETUP_STATEMENTS = st.sampled_from(["import math", "x = 1", "def helper():\n    return 2", "y = [1, 2]"])
TEST_STATEMENTS = st.builds(lambda n: f"assert f({n}) == {n}", st.integers(-(10**6), 10**6))


@given(st.lists(st.tuples(st.booleans(), SETUP_STATEMENTS, TEST_STATEMENTS), max_size=30))
def test_split_keeps_every_statement_once_and_in_order(plan):
    statements = [test if is_test else setup for is_test, setup, test in plan]
    setup, tests = split_python_tests("\n".join(statements) + "\n")
    assert list(tests) == [s for s in statements if s.startswith("assert")]
    assert setup == "\n".join(s for s in statements if not s.startswith("assert"))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
TESTS_OBJECTS = st.fixed_dictionaries(
    {"tests": st.lists(JSON | st.text(max_size=20), max_size=4)},
    optional={"format": st.sampled_from(["functional", "stdio", "other"]), "setup": JSON},
)


@settings(max_examples=300, deadline=None)
@given(JSON | TESTS_OBJECTS, st.sampled_from([None, "functional", "stdio"]))
def test_any_json_loads_as_well_formed_tests_or_a_usage_error(tmp_path_factory, data, format):
    tmp_path = tmp_path_factory.mktemp("json")
    code, tests = write(tmp_path, json.dumps(data), "tests.json")
    try:
        job = load_job(code, tests, format)
    except UserError:
        return
    assert job.tests
    if job.format == "functional":
        assert all(type(t) is str and t.strip() for t in job.tests)
    else:
        assert all(type(c.input) is str and type(c.output) is str for c in job.tests)


@given(st.text(max_size=200))
def test_any_text_as_a_python_tests_file_is_tests_or_a_usage_error(text):
    try:
        setup, tests = split_python_tests(text)
    except UserError:
        return
    except (ValueError, RecursionError, MemoryError):
        pytest.fail("the parser let a raw error through")
    assert isinstance(setup, str) and all(isinstance(t, str) for t in tests)
