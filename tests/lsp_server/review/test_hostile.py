"""Hostile and careless input: review never reads outside the repository, never follows a link out of it, never
opens a FIFO or device, bounds what it reads, and says in every format what it skipped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from conftest import ScriptedServer
from typer.testing import CliRunner

from engine.remote import RemoteEngine
from lsp_server.review.cache import ReviewCache
from lsp_server.review.context import units_for_file
from lsp_server.review.editor import review_document
from lsp_server.review.report import FORMATS
from lsp_server.review.report.sarif import SCHEMA_PATH
from lsp_server.review.runner import review_diff
from lsp_server.review.sources import DiffSource, added_file, read_diff
from mimo.cli import app

SECRET = "hunter2-do-not-leak"
# A syntax error away from the changed lines and an import: the checks quote the one, the prompt the other.
SECRET_FILE = f"import {SECRET.replace('-', '_')}\nx = 1\ndef broken(:  # {SECRET}\n"
REPORT_SCHEMA = Path(__file__).resolve().parents[3] / "lsp_server/review/report/mimo-review.schema.json"
pytestmark = pytest.mark.timeout(60)  # a FIFO or /dev/zero that is opened shows up as a hang or a crash here


def _invoke(*args: str):
    return CliRunner().invoke(app, ["review", *args])


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.py"
    secret.parent.mkdir()
    secret.write_text(SECRET_FILE)
    return secret


def _base_repo(repo) -> None:
    repo.write("ok.py", "x = 1\n")
    repo.commit()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_link_to_a_file_outside_is_refused_in_every_format(repo, outside, fmt):
    _base_repo(repo)
    os.symlink(outside, repo.root / "link.py")
    repo.write("ok.py", "x = 2\n")
    result = _invoke(str(repo.root), "--checks-only", "--format", fmt, "--fail-on", "never")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and "hunter2" not in result.stdout
    assert "link.py" in result.stdout and "points outside the repository" in result.stdout


def test_machine_formats_carry_the_skipped_paths_where_their_readers_look(repo, outside):
    _base_repo(repo)
    os.symlink(outside, repo.root / "link.py")
    os.symlink("ok.py", repo.root / "inner_link.py")
    out = {fmt: _invoke(str(repo.root), "--checks-only", "--format", fmt).stdout for fmt in FORMATS}

    report = json.loads(out["json"])
    jsonschema.Draft7Validator(json.loads(REPORT_SCHEMA.read_text())).validate(report)
    assert {(s["path"], s["refused"]) for s in report["skipped"]} == {("link.py", True), ("inner_link.py", False)}
    assert report["summary"]["files"] == 2

    sarif = json.loads(out["sarif"])
    jsonschema.Draft4Validator(json.loads(SCHEMA_PATH.read_text())).validate(sarif)
    (invocation,) = sarif["runs"][0]["invocations"]
    levels = {n["message"]["text"].split(":")[1].strip(): n["level"] for n in invocation["toolExecutionNotifications"]}
    assert levels == {"link.py": "warning", "inner_link.py": "note"}

    rdjson = json.loads(out["rdjson"])
    assert {(d["location"]["path"], d["severity"]) for d in rdjson["diagnostics"]} == {
        ("link.py", "WARNING"), ("inner_link.py", "INFO")}  # fmt: skip
    github = out["github"].splitlines()
    assert any(line.startswith("::warning title=mimo/skipped::") and "link.py" in line for line in github)
    assert any(line.startswith("::notice file=inner_link.py,title=mimo/skipped::") for line in github)


def test_links_to_dev_zero_and_to_a_fifo_are_never_opened(repo, tmp_path):
    _base_repo(repo)
    os.mkfifo(tmp_path / "pipe")
    os.symlink("/dev/zero", repo.root / "zero.py")
    os.symlink(tmp_path / "pipe", repo.root / "pipe.py")
    os.mkfifo(repo.root / "inner_pipe.py")  # git does not list FIFOs; the review must not open it either
    result = _invoke(str(repo.root), "--checks-only", "--format", "json")
    skipped = {s["path"]: s["reason"] for s in json.loads(result.stdout)["skipped"]}
    assert skipped == {"zero.py": "a symbolic link that points outside the repository",
                       "pipe.py": "a symbolic link that points outside the repository"}  # fmt: skip


@pytest.mark.parametrize("staged", [True, False])
def test_a_committed_link_is_set_aside_by_its_git_mode(repo, outside, staged):
    _base_repo(repo)
    os.symlink(outside, repo.root / "link.py")
    os.symlink("/dev/zero", repo.root / "zero.py")
    repo.git("add", "link.py", "zero.py")
    args = ["--staged"] if staged else []
    if not staged:
        repo.git("checkout", "-q", "-b", "topic")
        repo.commit("add links")
        args = ["--base", "main"]
    report = json.loads(_invoke(str(repo.root), *args, "--checks-only", "--format", "json").stdout)
    assert {s["path"] for s in report["skipped"] if s["refused"]} == {"link.py", "zero.py"}
    assert report["findings"] == []  # the link text "/…/secret.py" is not parsed as Python either


async def test_the_model_never_sees_text_from_outside(repo, outside):
    _base_repo(repo)
    os.symlink(outside, repo.root / "link.py")
    repo.write("ok.py", "x = 2  # BUG: changed\n")
    with ScriptedServer() as server:
        engine = RemoteEngine(server.url)
        try:
            report = await review_diff(read_diff(DiffSource(), repo.root), engine)
        finally:
            await engine.aclose()
    assert [f.path for f in report.findings] == ["ok.py"]
    assert all(SECRET.replace("-", "_") not in m["content"] for request in server.requests for m in request)


def _diff_adding(target: str, line: str) -> str:
    return f"--- /dev/null\n+++ {target}\n@@ -0,0 +1 @@\n+{line}\n"


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "through-link", "git-config"])
def test_diff_file_paths_outside_the_repository_are_refused(repo, outside, tmp_path, kind):
    _base_repo(repo)
    os.symlink(outside.parent, repo.root / "linked_dir")
    (repo.root / ".git" / "config").write_text(f"[secret]\n\ttoken = {SECRET}\n", encoding="utf-8")
    target = {"dotdot": "b/../outside/secret.py", "absolute": str(outside), "through-link": "b/linked_dir/secret.py",
              "git-config": "b/.git/config"}[kind]  # fmt: skip
    patch = tmp_path / "evil.diff"
    patch.write_text(_diff_adding(target, "[secret]" if kind == "git-config" else SECRET_FILE.split("\n")[0]))
    with ScriptedServer() as server:
        result = _invoke(str(repo.root), "--diff", str(patch), "--engine", server.url, "--no-cache",
                         "--format", "json", "--fail-on", "never")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert SECRET not in result.output and all(SECRET not in json.dumps(r) for r in server.requests)
    assert report["findings"] == [] and [s["refused"] for s in report["skipped"]] == [True]


def test_a_cache_entry_planted_as_a_fifo_or_link_is_a_miss(repo, tmp_path):
    _base_repo(repo)
    repo.write("ok.py", "x = 2\n")
    diff = read_diff(DiffSource(), repo.root)
    (unit,) = units_for_file(diff.files[0], "x = 2\n", 1000)
    cache = ReviewCache(tmp_path / "cache")
    cache.put(unit, "m", [])
    (entry,) = (tmp_path / "cache").glob("*/*.json")
    entry.unlink()
    os.mkfifo(entry)
    assert cache.get(unit, "m") is None
    entry.unlink()
    os.symlink("/dev/zero", entry)
    assert cache.get(unit, "m") is None
    entry.unlink()
    entry.write_text(json.dumps([{"path": "ok.py", "severity": "fatal"}]))
    assert cache.get(unit, "m") is None  # a damaged entry is a miss, not a crash


async def test_an_editor_buffer_that_is_a_link_out_is_not_reviewed(repo, outside):
    _base_repo(repo)
    link = repo.root / "link.py"
    os.symlink(outside, link)
    review = await review_document(link, "x = 3\n", None)
    assert review.diagnostics == [] and "symbolic link" in review.notes[0]


def test_large_untracked_files_are_skipped_not_refused(repo):
    _base_repo(repo)
    repo.write("big.py", "x = 1\n" * 800_000)  # 4.6 MiB
    report = json.loads(_invoke(str(repo.root), "--checks-only", "--format", "json").stdout)
    ((skipped),) = report["skipped"]
    assert skipped["path"] == "big.py" and skipped["reason"].startswith("larger than") and not skipped["refused"]


def test_a_diff_larger_than_the_bound_is_a_usage_error(repo, monkeypatch):
    from lsp_server.review import git_runner

    _base_repo(repo)
    repo.write("ok.py", "".join(f"x{i} = {i}\n" for i in range(100)))
    monkeypatch.setattr(git_runner, "MAX_OUTPUT_BYTES", 200)
    repo.git("add", "ok.py")
    result = _invoke(str(repo.root), "--checks-only", "--staged")
    assert result.exit_code == 2 and "too large to review at once" in result.stderr


def test_untracked_files_become_added_files_with_gits_binary_rule():
    assert added_file("a.py", b"x\r\ny\n").hunks[0].lines[0].text == "x"
    assert added_file("a.py", b"\x00\x01").is_binary and added_file("e.py", b"").hunks == ()
