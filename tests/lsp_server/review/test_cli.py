"""`mimo review` through Typer's CliRunner: formats on stdout, exit codes, errors as one line on stderr."""

from __future__ import annotations

import json

import jsonschema
import pytest
from conftest import ScriptedServer
from typer.testing import CliRunner

from lsp_server.review.report.sarif import SCHEMA_PATH
from mimo.cli import app

BROKEN = {"mod.py": "def f():\n    return (1\n"}


def _invoke(*args: str):
    return CliRunner().invoke(app, ["review", *args])


def _repo_with(repo, after: dict[str, str]):
    repo.write("mod.py", "def f():\n    return 1\n")
    repo.write("README.md", "hello\n")
    repo.commit()
    for path, text in after.items():
        repo.write(path, text)
    return str(repo.root)


@pytest.mark.parametrize(
    "fail_on, after, code",
    [
        ("error", BROKEN, 1),  # a syntax error the change introduces
        ("never", BROKEN, 0),
        ("error", {"mod.py": "def f():\n    return 2\n"}, 0),  # a clean change
        ("error", {}, 0),  # nothing changed
    ],
)
def test_exit_codes_follow_fail_on(repo, fail_on, after, code):
    result = _invoke(_repo_with(repo, after), "--checks-only", "--fail-on", fail_on, "--format", "json")
    assert result.exit_code == code, result.output
    assert json.loads(result.stdout)["schema"] == "mimo-review/1"


def test_fail_on_warning_counts_warnings_but_not_notes(repo, tmp_path):
    root = _repo_with(repo, {"mod.py": "def f():\n    return 2  # BUG: off by one\n"})
    with ScriptedServer() as server:  # the scripted reviewer reports warnings
        args = [root, "--engine", server.url, "--cache-dir", str(tmp_path / "c"), "--format", "json"]
        assert _invoke(*args, "--fail-on", "warning").exit_code == 1
        assert _invoke(*args, "--fail-on", "error").exit_code == 0


def test_model_review_reports_which_model_reviewed(repo, tmp_path):
    root = _repo_with(repo, {"mod.py": "def f():\n    return 2  # BUG: off by one\n"})
    with ScriptedServer() as server:
        result = _invoke(root, "--engine", server.url, "--no-cache", "--format", "sarif", "--fail-on", "never")
    assert result.exit_code == 0
    sarif = json.loads(result.stdout)
    jsonschema.Draft4Validator(json.loads(SCHEMA_PATH.read_text())).validate(sarif)
    (sarif_result,) = sarif["runs"][0]["results"]
    assert sarif_result["ruleId"] == "review/marked-bug"
    assert "reviewed by fake-reviewer" in result.stderr


def test_text_is_the_default_format(repo):
    result = _invoke(_repo_with(repo, BROKEN), "--checks-only")
    assert "Deterministic checks only" in result.stdout and "mod.py" in result.stdout
    assert "1 finding(s) in 1 changed file(s)" in result.stdout


def test_max_findings_keeps_the_most_severe(repo):
    root = _repo_with(repo, {"mod.py": "def f():\n    return (1\n", "c.txt": "<<<<<<< a\n=======\n>>>>>>> b\n"})
    result = _invoke(root, "--checks-only", "--format", "json", "--max-findings", "2", "--fail-on", "never")
    report = json.loads(result.stdout)
    assert len(report["findings"]) == 2 and all(f["severity"] == "error" for f in report["findings"])
    assert report["notes"] == ["2 more finding(s) left out by --max-findings"]


def test_diff_file_input(repo, tmp_path):
    _repo_with(repo, {"c.txt": "<<<<<<< ours\n"})
    patch = tmp_path / "pr.diff"
    repo.git("add", "c.txt")
    patch.write_text(repo.git("diff", "--cached"))
    result = _invoke(str(tmp_path), "--diff", str(patch), "--checks-only", "--format", "rdjson")
    assert result.exit_code == 1
    (diagnostic,) = json.loads(result.stdout)["diagnostics"]
    assert diagnostic["code"]["value"] == "mimo/conflict-marker"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--staged", "--base", "main"], "--base and --staged cannot be combined"),
        (["--base", "nope"], "--base 'nope' is not a commit"),
        (["--format", "xml"], "xml"),
        (["--diff", "/no/such.diff"], "cannot read --diff"),
    ],
)
def test_usage_errors_exit_2_with_one_line(repo, args, message):
    result = _invoke(_repo_with(repo, BROKEN), *args)
    assert result.exit_code == 2
    assert message in result.stderr or message in result.output
    assert "Traceback" not in result.output


def test_outside_a_repository_exits_2(tmp_path):
    result = _invoke(str(tmp_path), "--checks-only")
    assert result.exit_code == 2 and "not inside a git repository" in result.stderr


def test_an_unreachable_engine_exits_2(repo):
    with ScriptedServer() as server:
        url = server.url  # a port that was free a moment ago and is closed now
    result = _invoke(_repo_with(repo, BROKEN), "--engine", url, "--no-cache")
    assert result.exit_code == 2 and "cannot reach" in result.stderr


def test_the_nano_model_says_plainly_that_reviews_need_a_larger_model(repo):
    root = _repo_with(repo, {"mod.py": "def f():\n    return 2\n"})
    with ScriptedServer(model_id="nano") as server:
        result = _invoke(root, "--engine", server.url, "--no-cache")
    assert result.exit_code == 0
    assert "Reviewed by nano" in result.stdout and "MiMo-7B-RL behind --engine" in result.stdout


def test_a_missing_default_model_falls_back_to_the_checks(repo, tmp_path, monkeypatch):
    import engine.registry

    monkeypatch.setattr(engine.registry, "NANO_DIR", tmp_path / "no-nano-here")
    result = _invoke(_repo_with(repo, BROKEN), "--format", "json")
    assert result.exit_code == 1 and json.loads(result.stdout)["model"] is None
    assert "running the deterministic checks only" in result.stderr


def test_an_explicit_missing_model_is_an_error(repo, tmp_path):
    result = _invoke(_repo_with(repo, BROKEN), "--model", str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "no model" in result.stderr


def test_a_diff_file_matching_the_checkout_gets_the_syntax_check(repo, tmp_path):
    root = _repo_with(repo, BROKEN)  # as in CI: the head commit is checked out, the diff comes from elsewhere
    patch = tmp_path / "pr.diff"
    patch.write_text(repo.git("diff"))
    result = _invoke(root, "--diff", str(patch), "--checks-only", "--format", "json")
    assert result.exit_code == 1
    assert [f["rule_id"] for f in json.loads(result.stdout)["findings"]] == ["mimo/syntax-error"]
