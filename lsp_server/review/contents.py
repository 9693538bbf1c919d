"""A changed file's bytes before and after the change: from git's objects, an editor's buffers, or the working
tree, which is read only through lsp_server.safe_files (regular files inside the repository, bounded)."""

from __future__ import annotations

from pathlib import Path

from lsp_server.review.diff import Diff, FileChange, Hunk
from lsp_server.review.sources import blob
from lsp_server.safe_files import read_beneath


def file_contents(diff: Diff, change: FileChange) -> tuple[bytes | None, bytes | None]:
    """The file's bytes before and after the change; None where the file did not exist or is not known.
    Raises safe_files.UnsafePath when the file must not be read (a link out, a FIFO, too large...)."""
    if diff.root is None:
        return None, None
    if diff.after == "unknown":
        return _contents_from_worktree(diff.root, change)
    before = None  # a binary file's old side is never needed: only its new side is checked for NUL bytes
    if change.status != "added" and diff.before_rev is not None and not change.is_binary:
        before = blob(diff.root, f"{diff.before_rev}:{change.old_path}")
    after = None
    if change.status != "deleted":
        if diff.after == "buffers":
            after = diff.after_contents.get(change.path)
        elif diff.after == "index":
            after = blob(diff.root, f":{change.path}")
        elif diff.after == "worktree":
            after = _read(diff.root, change.path)
    return before, after


def _contents_from_worktree(root: Path, change: FileChange) -> tuple[bytes | None, bytes | None]:
    """A diff file's two sides, when the working tree holds its "after" side: the file must agree with every
    added and context line, and "before" is the diff undone."""
    after = _read(root, change.path) if change.status != "deleted" else None
    if after is None or change.is_binary:
        return None, after if change.is_binary else None
    before = undo_hunks(after, change.hunks)
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


def _read(root: Path, relative: str) -> bytes | None:
    try:
        return read_beneath(root, relative)
    except FileNotFoundError:
        return None
    except OSError:  # permission denied, a folder in the way...: not known, like a missing file
        return None
