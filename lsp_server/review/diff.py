"""What changed: unified diff text parsed into files, hunks and lines, and the screen that sets aside what review
does not read (paths leaving the repository, symbolic links, submodules).

Diff text is decoded as UTF-8 with ``surrogateescape``, so bytes that are not UTF-8 survive as lone surrogates
(``\\udc80``-``\\udcff``): the checks can tell a file that became non-UTF-8, and nothing crashes on Latin-1 input.
Lines are split on "\\n" alone: a form feed, a lone carriage return or U+2028 inside a line is part of it, as in
git (``str.splitlines`` would cut there and break the hunk).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from unidiff import PatchSet, UnidiffParseError

from lsp_server.safe_files import UnsafePath, check_relative_path

FileStatus = Literal["added", "deleted", "renamed", "modified"]
FileKind = Literal["file", "symlink", "submodule"]
# Where the "after" side of the diff lives: the working tree, the index, an editor's buffers (given in
# Diff.after_contents), or nowhere we can read for sure (a diff file: used only where the checkout agrees).
AfterSide = Literal["worktree", "index", "buffers", "unknown"]
_GIT_MODES: dict[str, FileKind] = {"120000": "symlink", "160000": "submodule"}


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
    kind: FileKind = "file"  # from git's file modes; links and submodules are set aside, never read

    @property
    def added_lines(self) -> frozenset[int]:
        return frozenset(n for hunk in self.hunks for n in hunk.added_lines)


@dataclass(frozen=True)
class Skipped:
    """A changed path review did not read, and why. ``refused``: input that would have led outside the
    repository or to something that is not a file (hostile or careless); otherwise merely not reviewable."""

    path: str
    reason: str
    refused: bool = False


@dataclass(frozen=True)
class Diff:
    files: tuple[FileChange, ...]
    root: Path | None  # the repository root, None when the diff came from a file outside any repository
    before_rev: str | None  # the tree-ish holding the "before" contents
    after: AfterSide
    after_contents: dict[str, bytes] = field(default_factory=dict)  # path -> bytes, for after == "buffers"
    skipped: tuple[Skipped, ...] = ()


def split_lines(text: str) -> list[str]:
    """Lines with their "\\n" kept, split on "\\n" only."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def parse_diff(text: str) -> list[FileChange]:
    """Parses unified diff text (git's, with renames, modes and binary markers, or plain `diff -u`)."""
    try:
        patch = PatchSet(split_lines(text))
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
    modes = (patched.source_mode, patched.target_mode)
    kind = next((_GIT_MODES[mode] for mode in modes if mode in _GIT_MODES), "file")
    return FileChange(path or patched.path, old_path, status, bool(patched.is_binary_file), hunks, kind)


def _strip_prefix(name: str) -> str:
    name = name.removesuffix("\r")  # a diff saved with CRLF line ends; git quotes a name that ends in CR
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        name = unquote_path(name[1:-1])
    return name[2:] if name.startswith(("a/", "b/")) else name


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_QUOTED = re.compile(r"\\([0-3][0-7]{2}|.)", re.S)


def unquote_path(quoted: str) -> str:
    """A path git wrote between double quotes with C escapes (``\\n``, ``\\"``, ``\\303\\251`` for bytes),
    as the name it stands for (bytes that are not UTF-8 become lone surrogates)."""
    raw = bytearray()
    position = 0
    for match in _QUOTED.finditer(quoted):
        raw += quoted[position : match.start()].encode("utf-8", "surrogateescape")
        escape = match[1]
        if len(escape) == 3:
            raw.append(int(escape, 8))
        elif escape in _ESCAPES:
            raw.append(_ESCAPES[escape])
        else:  # not an escape git writes: keep it as it stands
            raw += match[0].encode("utf-8", "surrogateescape")
        position = match.end()
    raw += quoted[position:].encode("utf-8", "surrogateescape")
    return bytes(raw).decode("utf-8", "surrogateescape")


def _hunk(hunk) -> Hunk:
    lines = tuple(
        DiffLine(line.line_type, line.value.rstrip("\r\n"), line.source_line_no, line.target_line_no)
        for line in hunk
        if line.line_type in "+- "
    )
    return Hunk(hunk.source_start, hunk.target_start, lines)


def screen(changes: list[FileChange]) -> tuple[list[FileChange], list[Skipped]]:
    """Sets aside the changes review must not read: paths that are absolute, climb out with '..', hold a NUL
    or lie in .git (refused), symbolic links (their text is a target path, not code: refused when it points
    outside the repository) and submodules."""
    kept: list[FileChange] = []
    skipped: list[Skipped] = []
    for change in changes:
        try:
            for path in filter(None, (change.path, change.old_path)):
                check_relative_path(path)
        except UnsafePath as unsafe:
            skipped.append(Skipped(change.path, unsafe.reason, refused=True))
            continue
        if change.kind == "symlink":
            skipped.append(_link_skipped(change))
        elif change.kind == "submodule":
            skipped.append(Skipped(change.path, "a submodule: its commits are not reviewed here"))
        else:
            kept.append(change)
    return kept, skipped


def _link_skipped(change: FileChange) -> Skipped:
    targets = [line.text for hunk in change.hunks for line in hunk.lines if line.kind == "+"]
    outside = any(target.startswith("/") or ".." in target.split("/") for target in targets)
    if outside:
        return Skipped(change.path, "a symbolic link that points outside the repository", refused=True)
    return Skipped(change.path, "a symbolic link: review reads only regular files")


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


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")
