"""Property tests over review's path handling (Hypothesis): whatever paths a diff names (random strings, '..',
absolute paths, NUL bytes, line breaks, links out of the repository, FIFOs, /dev/zero, .git), nothing outside the
repository is opened by this process, sent to the model or written into any report; and the names git gives
(any bytes but '/' and NUL) come back exactly."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Repo, ScriptedServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.remote import RemoteEngine
from lsp_server.review.report import FORMATS, render
from lsp_server.review.runner import review_diff
from lsp_server.review.sources import DiffSource, read_diff
from lsp_server.safe_files import UnsafePath, check_relative_path

MARKER = "zq-marker-7f3a"
SECRET_FILE = f"import os\nx = 1\ndef broken(:  # {MARKER}\n"  # line 1 matches the diff; the rest must stay unread
pytestmark = pytest.mark.timeout(300)


class _OpenAudit:
    """Records every open() this process makes of a forbidden file (an audit hook stays for the process's
    life, so it only records while armed)."""

    def __init__(self) -> None:
        self.forbidden: set[str] = set()
        self.armed = False
        self.opened: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        if not self.armed or event != "open" or not isinstance(args[0], (str, bytes)):
            return
        path = os.fsdecode(args[0])
        if os.path.isabs(path) and os.path.realpath(path) in self.forbidden:
            self.opened.append(path)


AUDIT = _OpenAudit()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("world")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text(SECRET_FILE)
    os.mkfifo(outside / "pipe")
    repo = Repo(base / "repo")
    repo.write("ok.py", "x = 1\n")
    repo.commit()
    for name, target in {"link_out.py": outside / "secret.py", "dir_out": outside, "zero.py": "/dev/zero",
                         "pipe_link.py": outside / "pipe"}.items():  # fmt: skip
        os.symlink(target, repo.root / name)
    os.mkfifo(repo.root / "inner_fifo.py")
    with open(repo.root / ".git" / "config", "a") as config:
        config.write(f"# {MARKER}\n")
    AUDIT.forbidden = {os.path.realpath(p) for p in (outside / "secret.py", outside / "pipe", "/dev/zero",
                                                      repo.root / ".git" / "config")}  # fmt: skip
    with ScriptedServer() as server:
        yield repo.root, outside, server


HOSTILE = ["../outside/secret.py", "link_out.py", "dir_out/secret.py", "zero.py", "pipe_link.py", "inner_fifo.py",
           ".git/config", ".GIT/config", "./../outside/secret.py", "ok.py/../../outside/secret.py", "ok.py",
           "dir_out/pipe", "a\nb.py", "nul\0.py", ""]  # fmt: skip
_parts = st.sampled_from(["..", ".", "", "dir_out", "outside", "secret.py", "link_out.py", "ok.py", ".git", "x\ny"])
paths = st.one_of(
    st.sampled_from(HOSTILE),
    st.builds("/".join, st.lists(_parts, min_size=1, max_size=5)),
    st.builds(lambda p: "/" + p, st.builds("/".join, st.lists(_parts, min_size=1, max_size=5))),
    st.text(max_size=30),
)


def _quote(path: str) -> str:
    """A name as git writes it in a patch: in double quotes with C escapes when it needs them."""
    if not any(ch in path for ch in '"\\\n\t\r\0') and path.isprintable():
        return path
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    body = "".join(escapes.get(ch, ch) if ch.isprintable() or ch in escapes else f"\\{ord(ch) & 0xFF:03o}"
                   for ch in path)  # fmt: skip
    return f'"{body}"'


def _patch(targets: list[str], outside: Path) -> str:
    sections = []
    for target in targets:
        absolute = target.startswith("/")
        shown = str(outside.parent) + target if absolute else "b/" + target
        first = "[core]" if target.lower().endswith("config") else "import os"
        sections.append(f"--- /dev/null\n+++ {_quote(shown)}\n@@ -0,0 +1 @@\n+{first}\n")
    return "".join(sections)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(paths, min_size=1, max_size=3))
def test_nothing_outside_the_repository_is_ever_read_or_reported(world, tmp_path, targets):
    root, outside, server = world
    patch = tmp_path / "p.diff"
    patch.write_bytes(_patch(targets, outside).encode("utf-8", "surrogateescape"))
    server.requests.clear()
    AUDIT.opened.clear()
    AUDIT.armed = True
    try:
        report = asyncio.run(_review(root, patch, server))
    except Exception as error:  # a diff that does not parse is a clean refusal, never a read
        from lsp_server.review.diff import DiffError

        assert isinstance(error, DiffError), error
        report = None
    finally:
        AUDIT.armed = False
    assert AUDIT.opened == []
    assert all(MARKER not in message["content"] for request in server.requests for message in request)
    if report is None:
        return
    for fmt in FORMATS:
        assert MARKER not in render(fmt, report)
    for finding in report.all_findings:  # whatever was reported on, was a regular file inside the repository
        check_relative_path(finding.path)
        real = os.path.realpath(root / finding.path)
        assert real.startswith(os.path.realpath(root) + os.sep)


async def _review(root: Path, patch: Path, server: ScriptedServer):
    engine = RemoteEngine(server.url)
    try:
        return await review_diff(read_diff(DiffSource(diff_file=patch), root), engine)
    finally:
        await engine.aclose()


_names = st.text(st.characters(blacklist_characters="/\0", codec="utf-8", blacklist_categories=("Cs",)),
                 min_size=1, max_size=40).filter(lambda n: n not in (".", "..") and n.lower() != ".git"
                                                  and len(n.encode()) < 200)  # fmt: skip


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_names, min_size=1, max_size=4, unique_by=lambda n: n.lower()))
def test_git_names_come_back_exactly(tmp_path_factory, names):
    repo = Repo(tmp_path_factory.mktemp("names") / "repo")
    repo.write("keep.txt", "k\n")
    repo.commit()
    for name in names:
        (repo.root / name).write_text("<<<<<<< HEAD\n")
    subprocess.run(
        ["git", "--literal-pathspecs", "-C", str(repo.root), "add", "--", *names], check=True, capture_output=True
    )
    for source in (DiffSource(staged=True), DiffSource()):
        diff = read_diff(source, repo.root)
        assert sorted(change.path for change in diff.files) == sorted(names)
        assert diff.skipped == ()
        report = asyncio.run(review_diff(diff, None))
        assert sorted(f.path for f in report.findings) == sorted(names)  # a conflict marker each


def test_the_path_check_refuses_what_it_should():
    for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/.git/config", ".Git/HEAD", "a\0b"]:
        with pytest.raises(UnsafePath):
            check_relative_path(bad)
    for good in ["a.py", "a b/c\nd.py", "..a/b", "a/.gitignore", "-x", "é/中.py"]:
        assert check_relative_path(good) == good
