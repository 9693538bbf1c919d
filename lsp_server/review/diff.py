"""What changed: a `git diff` (or a diff file) parsed into files, hunks and lines, plus each file's contents before
and after the change.

Diff text is decoded as UTF-8 with ``surrogateescape``, so bytes that are not UTF-8 survive as lone surrogates
(``\\udc80``-``\\udcff``): the checks can tell a file that became non-UTF-8, and nothing crashes on Latin-1 input.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from unidiff import PatchSet, UnidiffParseError

FileStatus = Literal["added", "deleted", "renamed", "modified"]
# Where the "after" side of the diff lives: the working tree, the index, an editor's buffers (given in
# Diff.after_contents), or nowhere we can read (a diff file).
AfterSide = Literal["worktree", "index", "buffers", "unknown"]
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's well-known empty tree: the base of a first commit


class DiffError(Exception):
    """A diff that cannot be produced or read; the message says what to do."""


@dataclass(frozen=True)
class DiffLine:
    kind: Literal["+", "-", " "]
    text: str  # without the line break; may hold lone surrogates for bytes that are not UTF-8
    old_line: int | None  # 1-based, None for added lines
    new_line: int | None  # 1-based, None for removed lines


@dataclass(frozen=True)
class Hunk:
    old_start: int
    new_start: int
    lines: tuple[DiffLine, ...]

    @property
    def added_lines(self) -> tuple[int, ...]:
        return tuple(line.new_line for line in self.lines if line.kind == "+" and line.new_line is not None)


@dataclass(frozen=True)
class FileChange:
    path: str  # the path after the change (before it, for a deleted file), relative to the repository root
    old_path: str | None  # the path before the change; None for an added file
    status: FileStatus
    is_binary: bool
    hunks: tuple[Hunk, ...]

    @property
    def added_lines(self) -> frozenset[int]:
        return frozenset(n for hunk in self.hunks for n in hunk.added_lines)


@dataclass(frozen=True)
class DiffSource:
    """Which changes to review. ``base`` = merge-base of REF and HEAD vs the working tree; ``staged`` = index vs
    HEAD; ``diff_file`` = a unified diff read from a file; none of these = working tree vs HEAD."""

    base: str | None = None
    staged: bool = False
    diff_file: Path | None = None


@dataclass(frozen=True)
class Diff:
    files: tuple[FileChange, ...]
    root: Path | None  # the repository root, None when the diff came from a file outside any repository
    before_rev: str | None  # the tree-ish holding the "before" contents
    after: AfterSide
    after_contents: dict[str, bytes] = field(default_factory=dict)  # path -> bytes, for after == "buffers"


def parse_diff(text: str) -> list[FileChange]:
    """Parses unified diff text (git's, with renames and binary markers, or plain `diff -u`)."""
    try:
        patch = PatchSet(text.splitlines(keepends=True))
    except UnidiffParseError as error:
        raise DiffError(f"could not parse the diff: {error}") from None
    return [_file_change(patched) for patched in patch]


def _file_change(patched) -> FileChange:
    status: FileStatus
    if patched.is_added_file:
        status = "added"
    elif patched.is_removed_file:
        status = "deleted"
    elif patched.is_rename:
        status = "renamed"
    else:
        status = "modified"
    old_path = None if status == "added" else _strip_prefix(patched.source_file)
    path = old_path if status == "deleted" else _strip_prefix(patched.target_file)
    hunks = tuple(_hunk(h) for h in patched)
    return FileChange(path or patched.path, old_path, status, bool(patched.is_binary_file), hunks)


def _strip_prefix(name: str) -> str:
    name = name.strip()
    if name.startswith('"') and name.endswith('"'):
        name = name[1:-1]
    return name[2:] if name.startswith(("a/", "b/")) else name


def _hunk(hunk) -> Hunk:
    lines = tuple(
        DiffLine(line.line_type, line.value.rstrip("\r\n"), line.source_line_no, line.target_line_no)
        for line in hunk
        if line.line_type in "+- "
    )
    return Hunk(hunk.source_start, hunk.target_start, lines)


def git(root: Path, *args: str, check: bool = True) -> bytes:
    """Runs git in ``root`` and returns its stdout; a failure becomes a DiffError with git's own message."""
    command = ["git", "-c", "core.quotePath=false", "-C", str(root), *args]
    try:
        done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    except FileNotFoundError:
        raise DiffError("git is not installed; install git or pass --diff FILE") from None
    if check and done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DiffError(f"git {args[0]} failed: {message[-1] if message else done.returncode}")
    return done.stdout


def repository_root(path: Path) -> Path | None:
    directory = path if path.is_dir() else path.parent
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent  # a new file in a folder not created yet (an editor buffer)
    try:
        out = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--show-toplevel"], capture_output=True, timeout=30, check=False
        )
    except FileNotFoundError:
        return None
    return Path(out.stdout.decode().strip()) if out.returncode == 0 else None


def read_diff(source: DiffSource, path: Path = Path(".")) -> Diff:
    """The diff that ``source`` names, limited to ``path`` when it lies inside the repository."""
    path = path.resolve()
    if not path.exists():
        raise DiffError(f"{path} does not exist; pass a file or folder inside a git repository")
    root = repository_root(path)
    if source.diff_file is not None:
        return _diff_from_file(source.diff_file, root)
    if root is None:
        raise DiffError(f"{path} is not inside a git repository; run in one, or pass --diff FILE")
    pathspec = [] if path == root else [str(path.relative_to(root))]
    head = head_or_empty_tree(root)
    options = ["diff", "--no-color", "--no-ext-diff", "-M", "--src-prefix=a/", "--dst-prefix=b/"]
    if source.staged:
        text = git(root, *options, "--cached", head, "--", *pathspec)
        return Diff(tuple(parse_diff(_decode(text))), root, head, "index")
    before = _merge_base(root, source.base) if source.base else head
    text = git(root, *options, before, "--", *pathspec) + _untracked_diffs(root, pathspec)
    return Diff(tuple(parse_diff(_decode(text))), root, before, "worktree")


def _diff_from_file(diff_file: Path, root: Path | None) -> Diff:
    try:
        data = diff_file.read_bytes()
    except OSError as error:
        raise DiffError(f"cannot read --diff {diff_file}: {error.strerror}") from None
    # The working tree is the likeliest "after" (CI checks out the head commit), but only a file that agrees
    # with the diff is trusted (see file_contents); otherwise checks work from the diff's own lines.
    return Diff(tuple(parse_diff(_decode(data))), root, None, "unknown")


def head_or_empty_tree(root: Path) -> str:
    has_head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--verify", "--quiet", "HEAD"], capture_output=True, check=False
    )
    return "HEAD" if has_head.returncode == 0 else EMPTY_TREE


def _merge_base(root: Path, ref: str) -> str:
    if subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                      capture_output=True, check=False).returncode != 0:  # fmt: skip
        raise DiffError(f"--base {ref!r} is not a commit in {root}; fetch it or name a branch, tag or sha")
    return git(root, "merge-base", ref, "HEAD").decode().strip()


def _untracked_diffs(root: Path, pathspec: Sequence[str]) -> bytes:
    """New files git does not track yet are part of "uncommitted changes" too; diff each against /dev/null."""
    names = git(root, "ls-files", "--others", "--exclude-standard", "-z", "--", *pathspec).split(b"\0")
    chunks = []
    for name in filter(None, names):
        relative = name.decode("utf-8", "surrogateescape")
        # --no-index exits 1 when the files differ, which is always the case here.
        chunks.append(git(root, "diff", "--no-color", "--no-index", "--src-prefix=a/", "--dst-prefix=b/",
                          "--", "/dev/null", relative, check=False))  # fmt: skip
    return b"".join(chunks)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def file_contents(diff: Diff, change: FileChange) -> tuple[bytes | None, bytes | None]:
    """The file's bytes before and after the change; None where the file did not exist or cannot be read."""
    if diff.root is None or change.is_binary:
        return None, None
    if diff.after == "unknown":
        return _contents_from_worktree(diff.root, change)
    before = None
    if change.status != "added" and diff.before_rev is not None:
        before = blob(diff.root, f"{diff.before_rev}:{change.old_path}")
    after = None
    if change.status != "deleted":
        if diff.after == "buffers":
            after = diff.after_contents.get(change.path)
        elif diff.after == "index":
            after = blob(diff.root, f":{change.path}")
        elif diff.after == "worktree":
            after = _read(diff.root / change.path)
    return before, after


def _contents_from_worktree(root: Path, change: FileChange) -> tuple[bytes | None, bytes | None]:
    """A diff file's two sides, when the working tree holds its "after" side: the file must agree with every
    added and context line, and "before" is the diff undone."""
    after = _read(root / change.path) if change.status != "deleted" else None
    before = undo_hunks(after, change.hunks) if after is not None else None
    if before is None:
        return None, None
    return (None if change.status == "added" else before), after


def undo_hunks(after: bytes, hunks: tuple[Hunk, ...]) -> bytes | None:
    """The file before the hunks were applied, or None when ``after`` does not match them."""
    lines = after.split(b"\n")
    before: list[bytes] = []
    cursor = 0
    for hunk in hunks:
        new_lines = [line.new_line for line in hunk.lines if line.new_line is not None]
        start = new_lines[0] - 1 if new_lines else hunk.new_start  # "+5,0" means: after line 5
        if start < cursor:
            return None
        before += lines[cursor:start]
        cursor = start
        for line in hunk.lines:
            text = line.text.encode("utf-8", "surrogateescape")
            if line.kind == "-":
                before.append(text)
                continue
            if cursor >= len(lines) or lines[cursor].rstrip(b"\r") != text:
                return None
            if line.kind == " ":
                before.append(lines[cursor])
            cursor += 1
    return b"\n".join(before + lines[cursor:])


def blob(root: Path, spec: str) -> bytes | None:
    done = subprocess.run(["git", "-C", str(root), "show", spec], capture_output=True, check=False)
    return done.stdout if done.returncode == 0 else None


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def decode_text(data: bytes | None) -> str | None:
    """Strict UTF-8 text, or None for bytes that are not UTF-8."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def has_undecodable(text: str) -> bool:
    """True when text decoded with surrogateescape held bytes that are not UTF-8."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)
