"""`mimo verify`, `mimo eval humaneval` and `mimo bench verify` through Typer's CliRunner, with the real sandbox."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mimo.cli import app

ADD = "def add(a, b):\n    return a + b\n"


@pytest.fixture
def files(tmp_path, verifier_config):  # verifier_config: skips where the sandbox cannot run
    (tmp_path / "sol.py").write_text(ADD)
    (tmp_path / "good.py").write_text("assert add(1, 2) == 3\nassert add(0, 0) == 0\n")
    (tmp_path / "bad.py").write_text("import math\nassert add(1, 2) == 3\nassert add(2, 2) == 5\n")
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_verify_passing_code_exits_0_with_json(files):
    result = invoke("verify", "--code", str(files / "sol.py"), "--tests", str(files / "good.py"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] is True and [t["outcome"] for t in data["tests"]] == ["passed", "passed"]


def test_verify_failing_code_exits_1_with_per_test_results(files):
    result = invoke("verify", "--code", str(files / "sol.py"), "--tests", str(files / "bad.py"), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["passed"] is False
    assert [t["outcome"] for t in data["tests"]] == ["passed", "failed"]


def test_verify_stdio_tests_from_json(files):
    (files / "echo.py").write_text("print(input().upper())\n")
    (files / "cases.json").write_text(json.dumps([{"input": "ab", "output": "AB"}, {"input": "x", "output": "y"}]))
    result = invoke("verify", "--code", str(files / "echo.py"), "--tests", str(files / "cases.json"))
    assert result.exit_code == 1
    assert "1/2 tests passed" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--code", "missing.py"], "cannot read the code file"),
        (["--format", "xml"], "unknown --format 'xml'"),
        (["--bwrap", "/nonexistent/bwrap"], "apt-get install bubblewrap"),
    ],
)
def test_verify_bad_input_is_one_line_on_stderr_and_exit_2(files, args, message):
    base = {"--code": str(files / "sol.py"), "--tests": str(files / "good.py")}
    base.update(dict(zip(args[::2], args[1::2])))
    result = invoke("verify", *[x for pair in base.items() for x in pair])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_verify_unsafe_flag_runs_without_bwrap_and_warns(files):
    result = invoke(
        "verify",
        "--code",
        str(files / "sol.py"),
        "--tests",
        str(files / "good.py"),
        "--bwrap",
        "/nonexistent/bwrap",
        "--unsafe-no-sandbox",
        "--json",
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["sandboxed"] is False
    assert "without isolation" in result.stderr


def test_humaneval_canonical_subset(verifier_config):
    result = invoke("eval", "humaneval", "--canonical", "--limit", "5", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"passed": 5, "total": 5, "samples": 1, "pass_at_k": {"pass@1": 1.0}}


@pytest.mark.slow
def test_humaneval_canonical_all_164_pass(verifier_config):
    result = invoke("eval", "humaneval", "--canonical", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["passed"], data["total"]) == (164, 164)


def test_humaneval_rejects_model_with_canonical(verifier_config):
    result = invoke("eval", "humaneval", "--canonical", "--model", "nano")
    assert result.exit_code == 2 and "--canonical" in result.stderr


def test_humaneval_unknown_model_is_a_clean_error(verifier_config):
    result = invoke("eval", "humaneval", "--model", "/nonexistent/model", "--limit", "1")
    assert result.exit_code == 2 and "no model" in result.stderr


@pytest.mark.slow
def test_humaneval_with_a_model_generates_and_verifies(verifier_config, tiny_model_dir):
    result = invoke(
        "eval",
        "humaneval",
        "--model",
        str(tiny_model_dir),
        "--limit",
        "2",
        "--samples",
        "2",
        "--max-tokens",
        "8",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["total"], data["samples"]) == (2, 2)
    assert set(data["pass_at_k"]) == {"pass@1"} and 0.0 <= data["pass_at_k"]["pass@1"] <= 1.0


@pytest.mark.slow
def test_bench_verify_reports_both_harnesses(verifier_config):
    result = invoke("bench", "verify", "--runs", "10", "--repeats", "1", "--limit", "4", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["runs_per_s"] > 0 and data["ratio"] > 0
    assert data["sandboxed_passed"] == data["unsandboxed_passed"] == 4
    assert set(data["goals"]) == {"runs_per_s >= 40", "ratio <= 2"}


def _one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "1e308"])
def test_verify_rejects_a_timeout_that_is_not_a_usable_number(files, value):
    result = invoke("verify", "--code", str(files / "sol.py"), "--tests", str(files / "good.py"), "--timeout", value)
    _one_line_error(result, "--timeout must be a finite number above 0")


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("null", "holds null"),
        ("3", "holds int"),
        ('"tests"', "holds str"),
        ('{"format": "functional", "tests": [1, true, {"input": "1", "output": "2"}]}', "test 0 must be a string"),
    ],
)
def test_verify_malformed_json_tests_are_a_usage_error_never_a_pass(files, content, fragment):
    (files / "empty.py").write_text("")
    (files / "tests.json").write_text(content)
    result = invoke("verify", "--code", str(files / "empty.py"), "--tests", str(files / "tests.json"))
    _one_line_error(result, fragment)
    assert "PASSED" not in result.stdout


def test_verify_stdio_cases_with_format_functional_are_a_usage_error(files):
    (files / "cases.json").write_text(json.dumps([{"input": "1", "output": "1"}]))
    result = invoke(
        "verify", "--code", str(files / "sol.py"), "--tests", str(files / "cases.json"), "--format", "functional"
    )
    _one_line_error(result, "test 0 must be a string of Python, got dict")


def test_verify_blames_a_broken_setup_on_the_tests_not_the_candidate(files):
    (files / "broken.py").write_text("import no_such_module_anywhere\nassert add(1, 2) == 3\n")
    result = invoke("verify", "--code", str(files / "sol.py"), "--tests", str(files / "broken.py"))
    _one_line_error(result, "the tests' setup failed", "no_such_module_anywhere")


def test_verify_runs_pytest_style_test_functions(files):
    (files / "test_add.py").write_text(
        "def test_small():\n    assert add(1, 2) == 3\n\nclass TestMore:\n    def test_zero(self):\n"
        "        assert add(0, 0) == 0\n    def test_wrong(self):\n        assert add(2, 2) == 5\n"
    )
    result = invoke("verify", "--code", str(files / "sol.py"), "--tests", str(files / "test_add.py"), "--json")
    assert result.exit_code == 1, result.output
    assert [t["outcome"] for t in json.loads(result.stdout)["tests"]] == ["passed", "passed", "failed"]


def test_verify_json_says_which_protections_were_active(files):
    result = invoke("verify", "--code", str(files / "sol.py"), "--tests", str(files / "good.py"), "--json")
    protections = json.loads(result.stdout)["protections"]
    assert protections["sandbox"] == "bubblewrap" and protections["seccomp"] is True
    assert protections["nested_userns_blocked"] is True and protections["work_tmpfs_mb"] > 0
    assert protections["cgroup"] in ("v1", "v2", "none") and protections["trusted_side"]
