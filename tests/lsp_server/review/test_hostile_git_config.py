"""A repository whose own .git folder is hostile (an unpacked archive, a shared folder): review runs git on it
without running any program its config or hooks name, without fetching, and without hanging on a FIFO.

Each test plants a setting that, under a plain `git diff` / `git cat-file`, runs a command that leaves a marker
file; the marker must not appear, and the review must still see the change."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lsp_server.review import git_runner
from lsp_server.review.editor import review_document
from mimo.cli import app

pytestmark = pytest.mark.timeout(60)


def _review(root: Path, *args: str):
    return CliRunner().invoke(app, ["review", str(root), "--checks-only", "--format", "json", *args])


def _changed(repo) -> None:
    """A committed file, then changed in the working tree (`git diff` must read it)."""
    repo.write("a.py", "x = 1\n")
    repo.commit()
    repo.write("a.py", "x = 2\ny = (\n")  # a syntax error the checks report: proof the change was seen


def _marker_command(marker: Path) -> str:
    return f"touch '{marker}'; cat"


def _reported(result) -> list[str]:
    assert result.exit_code in (0, 1), result.output
    return [finding["path"] for finding in json.loads(result.stdout)["findings"]]


def test_core_fsmonitor_is_never_run(repo, tmp_path):
    marker = tmp_path / "fsmonitor-ran"
    _changed(repo)
    repo.git("config", "core.fsmonitor", f"touch '{marker}'; false #")
    subprocess.run(["git", "-C", str(repo.root), "diff", "HEAD"], capture_output=True, check=False)
    assert marker.exists(), "plain git runs core.fsmonitor: the test would prove nothing"
    marker.unlink()
    assert _reported(_review(repo.root)) == ["a.py"]
    assert not marker.exists()


def test_the_repositorys_filter_drivers_are_never_run(repo, tmp_path):
    marker = tmp_path / "filter-ran"
    repo.write(".gitattributes", "*.py filter=evil\n")
    _changed(repo)
    repo.git("config", "filter.evil.clean", _marker_command(marker))
    repo.git("config", "filter.evil.process", f"touch '{marker}'")
    repo.git("config", "filter.evil.required", "true")
    assert _reported(_review(repo.root)) == ["a.py"]
    assert not marker.exists()
    assert _reported(_review(repo.root, "--staged")) == []  # nothing staged: still nothing run
    assert not marker.exists()


def test_a_filter_from_the_users_own_config_still_runs(repo, tmp_path, monkeypatch):
    """Only the repository's settings are distrusted: git-lfs and the like, set up by the user, keep working."""
    marker = tmp_path / "user-filter-ran"
    user_config = tmp_path / "gitconfig"
    subprocess.run(["git", "config", "--file", str(user_config), "filter.mine.clean", _marker_command(marker)],
                   check=True)  # fmt: skip
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(user_config))
    repo.write(".gitattributes", "*.py filter=mine\n")
    _changed(repo)
    assert _reported(_review(repo.root)) == ["a.py"]
    assert marker.exists()


def test_hooks_in_the_repository_are_never_run(repo, tmp_path):
    marker = tmp_path / "hook-ran"
    repo.write("b.py", "z = 0\n")
    _changed(repo)
    hook = repo.root / ".git" / "hooks" / "post-index-change"
    hook.write_text(f"#!/bin/sh\ntouch '{marker}'\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    os.utime(repo.root / "b.py", (1, 1))  # same text, new stat data: git diff refreshes and writes the index
    subprocess.run(["git", "-C", str(repo.root), "diff", "HEAD"], capture_output=True, check=False)
    assert marker.exists(), "plain git runs the hook: the test would prove nothing"
    marker.unlink()
    os.utime(repo.root / "b.py", (2, 2))
    assert _reported(_review(repo.root)) == ["a.py"]
    assert not marker.exists()


def _promisor_without_a_blob(repo, marker: Path) -> None:
    """A partial clone fetches a missing object from its promisor remote; an ext:: URL is a command."""
    blob = repo.git("rev-parse", "HEAD:a.py").strip()
    (repo.root / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    for key, value in [("core.repositoryformatversion", "1"), ("extensions.partialClone", "origin"),
                       ("remote.origin.promisor", "true"), ("protocol.ext.allow", "always"),
                       ("remote.origin.url", f"ext::sh -c touch% {marker}")]:  # fmt: skip
        repo.git("config", key, value)
    subprocess.run(["git", "-C", str(repo.root), "cat-file", "blob", "HEAD:a.py"], capture_output=True, check=False)
    assert marker.exists(), "plain git fetches the object: the test would prove nothing"
    marker.unlink()


def test_a_missing_object_is_never_fetched_from_a_promisor_remote(repo, tmp_path):
    marker = tmp_path / "fetch-ran"
    _changed(repo)
    _promisor_without_a_blob(repo, marker)
    result = _review(repo.root)
    assert not marker.exists()
    assert result.exit_code == 2 and "git diff failed" in result.stderr  # the object is not there: said, not fetched


async def test_the_editor_review_never_fetches_either(repo, tmp_path):
    marker = tmp_path / "fetch-ran"
    _changed(repo)
    _promisor_without_a_blob(repo, marker)
    await review_document(repo.root / "a.py", "x = 2\ny = (\n", None)
    assert not marker.exists()


def test_an_include_that_blocks_is_cut_off_with_one_line(repo, tmp_path, monkeypatch):
    monkeypatch.setattr(git_runner, "QUICK_TIMEOUT_S", 1)
    monkeypatch.setattr(git_runner, "GIT_TIMEOUT_S", 1)
    _changed(repo)
    os.mkfifo(tmp_path / "fifo")
    repo.git("config", "include.path", str(tmp_path / "fifo"))
    result = _review(repo.root)
    assert result.exit_code == 2 and "took longer than" in result.stderr and "Traceback" not in result.output


def test_a_work_tree_moved_outside_by_core_worktree_is_refused(repo, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "id_rsa.py").write_text("SECRET = 'hunter2'\nbroken(\n")
    _changed(repo)
    repo.git("config", "core.worktree", str(home))
    result = _review(repo.root)
    assert result.exit_code == 2 and "core.worktree" in result.stderr and "Traceback" not in result.output
    assert "hunter2" not in result.output and "id_rsa" not in result.stdout


_LIMITED_DIFF = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))  # git inherits it: a runaway read stops here
from lsp_server.review import git_runner
git_runner.GIT_MEMORY_BYTES = 256 << 20
try:
    sys.stdout.buffer.write(git_runner.git(Path(sys.argv[1]), "diff", "HEAD"))
except git_runner.DiffError as error:
    print(error, file=sys.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
"""


def _limited_git_diff(root: Path) -> tuple[bytes, str, int]:
    """git_runner's `git diff HEAD` in a process of its own (1.5 GiB at most, git's cap set to 256 MiB): what
    git printed, the error, and the most memory git held (KiB)."""
    out = subprocess.run([sys.executable, "-c", _LIMITED_DIFF, str(root)], capture_output=True, check=True)
    *error, peak = out.stderr.decode().strip().split("\n")
    return out.stdout, "\n".join(error), int(peak)


def test_an_attributes_file_that_never_ends_is_not_read(repo):
    """core.attributesFile=/dev/zero: git would read zeros until memory runs out."""
    _changed(repo)
    repo.git("config", "core.attributesFile", "/dev/zero")
    printed, error, _ = _limited_git_diff(repo.root)
    assert not error and b"+y = (" in printed


def test_info_attributes_that_is_not_a_file_is_refused(repo):
    """git reads .git/info/attributes whatever the settings: a link to /dev/zero is refused before git runs."""
    _changed(repo)
    os.symlink("/dev/zero", repo.root / ".git" / "info" / "attributes")
    printed, error, _ = _limited_git_diff(repo.root)
    assert not printed and "info/attributes is not a regular file" in error
    result = _review(repo.root)
    assert result.exit_code == 2 and "info/attributes is not a regular file" in result.stderr


@pytest.mark.parametrize("name", ["objects/info/alternates", "info/grafts"])
def test_files_git_reads_whole_meet_a_cap_on_its_memory(repo, monkeypatch, name):
    """git reads these whole, from any repository: linked to /dev/zero, they would fill the machine's memory."""
    _changed(repo)
    os.symlink("/dev/zero", repo.root / ".git" / name)
    printed, error, peak_kib = _limited_git_diff(repo.root)
    assert not printed and "out of memory" in error.lower() and peak_kib < 512 << 10
    monkeypatch.setattr(git_runner, "GIT_MEMORY_BYTES", 256 << 20)
    result = _review(repo.root)
    assert result.exit_code == 2 and "out of memory" in result.stderr.lower() and "Traceback" not in result.output
