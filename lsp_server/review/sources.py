"""Where a diff comes from: `git diff` (working tree, index, or since a merge base, untracked files included) or
a diff file. Everything git prints is read with a bound, and git's paths come from its NUL-separated listings
(``-z``), so a name holding a newline, a tab, quotes or " b/" is never misread from the patch text."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lsp_server.review.diff import (
    Diff,
    DiffError,
    DiffLine,
    FileChange,
    Hunk,
    Skipped,
    decode,
    parse_diff,
    screen,
    split_lines,
)
from lsp_server.review.git_runner import GitFailed, TooLarge, git, git_succeeds
from lsp_server.safe_files import MAX_FILE_BYTES, FileTooLarge, UnsafePath, check_relative_path, read_beneath

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's well-known empty tree: the base of a first commit
MAX_DIFF_BYTES = 64 * 1024 * 1024  # a bigger diff file is not a review; the error says how to split it
_BINARY_SNIFF = 8000  # git's own rule: a NUL byte in the first 8000 bytes makes a file binary
# No external diff or textconv command runs; a submodule's work tree is not inspected (git would run `git status`
# inside it, under that repository's own config): only its recorded commit counts, and review sets it aside.
_DIFF_OPTIONS = ("--no-color", "--no-ext-diff", "--no-textconv", "--ignore-submodules=dirty", "-M")


@dataclass(frozen=True)
class DiffSource:
    """Which changes to review. ``base`` = merge-base of REF and HEAD vs the working tree; ``staged`` = index vs
    HEAD; ``diff_file`` = a unified diff read from a file; none of these = working tree vs HEAD."""

    base: str | None = None
    staged: bool = False
    diff_file: Path | None = None


def repository_root(path: Path) -> Path | None:
    """The work tree of the repository holding ``path``, as git names it; None outside any. GitError when git
    is missing or hangs."""
    directory = path if path.is_dir() else path.parent
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent  # a new file in a folder not created yet (an editor buffer)
    try:
        out = git(directory, "rev-parse", "--show-toplevel", quick=True)
    except GitFailed:
        return None
    return Path(out.decode("utf-8", "surrogateescape").rstrip("\n"))


def head_or_empty_tree(root: Path) -> str:
    return "HEAD" if git_succeeds(root, "rev-parse", "--verify", "--quiet", "HEAD") else EMPTY_TREE


def blob(root: Path, spec: str, limit: int = MAX_FILE_BYTES) -> bytes | None:
    """The blob ``spec`` names (``REV:path``, ``:path`` for the index), None when there is none. Raises
    UnsafePath when it is larger than ``limit``."""
    try:
        return git(root, "cat-file", "blob", spec, limit=limit)
    except TooLarge:
        raise FileTooLarge(f"larger than {limit // 1024 // 1024} MiB") from None
    except DiffError:
        return None


def read_diff(source: DiffSource, path: Path = Path(".")) -> Diff:
    """The diff that ``source`` names, limited to ``path`` when it lies inside the repository, with what review
    must not read already set aside in ``Diff.skipped``."""
    path = path.resolve()
    if not path.exists():
        raise DiffError(f"{path} does not exist; pass a file or folder inside a git repository")
    root = repository_root(path)
    real_root = Path(os.path.realpath(root)) if root is not None else None
    if real_root is not None and path != real_root and real_root not in path.parents:
        raise DiffError(f"git says the work tree of {path} is {root}, which does not hold it (core.worktree in its "
                        ".git/config?); review a folder inside its work tree")  # fmt: skip
    if source.diff_file is not None:
        return _diff_from_file(source.diff_file, root)
    if root is None:
        raise DiffError(f"{path} is not inside a git repository; run in one, or pass --diff FILE")
    pathspec = [] if path == real_root else [str(path.relative_to(real_root))]
    head = head_or_empty_tree(root)
    try:
        if source.staged:
            changes, skipped = _git_changes(root, ["--cached", head], pathspec)
            return Diff(tuple(changes), root, head, "index", skipped=tuple(skipped))
        before = _merge_base(root, source.base) if source.base else head
        changes, skipped = _git_changes(root, [before], pathspec)
        new, new_skipped = untracked_changes(root, pathspec)
    except TooLarge as error:
        raise DiffError(f"{error}: the change is too large to review at once; pass a PATH inside it") from None
    return Diff(tuple(changes + new), root, before, "worktree", skipped=tuple(skipped + new_skipped))


def _diff_from_file(diff_file: Path, root: Path | None) -> Diff:
    try:
        with open(diff_file, "rb") as stream:  # a FIFO is fine here (`--diff <(git diff)`): the person chose it
            data = stream.read(MAX_DIFF_BYTES + 1)
    except OSError as error:
        raise DiffError(f"cannot read --diff {diff_file}: {error.strerror}") from None
    if len(data) > MAX_DIFF_BYTES:
        raise DiffError(f"--diff {diff_file} is larger than {MAX_DIFF_BYTES // 1024 // 1024} MiB; split it")
    text = decode(data)
    changes = parse_diff(text)
    if not changes and text.strip():
        raise DiffError(f"--diff {diff_file} holds no unified diff (no 'diff --git' or '---'/'+++' file "
                        "headers); make one with `git diff` or `diff -u`")  # fmt: skip
    # The working tree is the likeliest "after" (CI checks out the head commit), but only a file that agrees
    # with the diff is trusted (see contents.file_contents); otherwise checks work from the diff's own lines.
    kept, skipped = screen(changes)
    return Diff(tuple(kept), root, None, "unknown", skipped=tuple(skipped))


def _merge_base(root: Path, ref: str) -> str:
    if ref.startswith("-") or not git_succeeds(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"):
        raise DiffError(f"--base {ref!r} is not a commit in {root}; fetch it or name a branch, tag or sha")
    return git(root, "merge-base", ref, "HEAD").decode().strip()


def _git_changes(root: Path, revs: list[str], pathspec: Sequence[str]) -> tuple[list[FileChange], list[Skipped]]:
    """git's patch, with each file's true paths taken from `git diff -z --name-status` (same order)."""
    text = git(root, "diff", *_DIFF_OPTIONS, "--src-prefix=a/", "--dst-prefix=b/", *revs, "--", *pathspec)
    listing = git(root, "diff", *_DIFF_OPTIONS, "-z", "--name-status", *revs, "--", *pathspec)
    entries, unmerged = _name_status(listing)
    segments = [segment for segment in _FILE_HEADER.split(decode(text)) if segment]
    if len(segments) != len(entries):
        raise DiffError(f"git diff listed {len(entries)} file(s) but its patch held {len(segments)}; "
                        "please report this with `git diff --name-status`")  # fmt: skip
    kept, skipped = screen([_segment_change(seg, old, new) for seg, (old, new) in zip(segments, entries, strict=True)])
    reason = "an unmerged path (a conflict not resolved in the index): review the working tree instead"
    return kept, skipped + [Skipped(name, reason) for name in unmerged]


_FILE_HEADER = re.compile(r"^(?=diff --git )", re.M)  # hunk lines start with ' ', '+', '-' or '\\': never this


def _segment_change(segment: str, old: str | None, new: str | None) -> FileChange:
    """One file's part of git's patch, parsed with its names replaced by placeholders (a name holding " b/",
    a tab or a line break makes git's header ambiguous), then given its true names from git's listing."""
    source, target = ("a/old", "b/new") if old is not None and new is not None and old != new else ("a/f", "b/f")
    lines = split_lines(segment)
    header_end = next((i for i, line in enumerate(lines) if line.startswith("@@")), len(lines))
    for i, line in enumerate(lines[:header_end]):
        if line.startswith("diff --git "):
            lines[i] = f"diff --git {source} {target}\n"
        elif line.startswith("--- ") and not line.startswith("--- /dev/null"):
            lines[i] = f"--- {source}\n"
        elif line.startswith("+++ ") and not line.startswith("+++ /dev/null"):
            lines[i] = f"+++ {target}\n"
        elif line.startswith("Binary files "):
            lines[i] = f"Binary files {source} and {target} differ\n"
    (change,) = parse_diff("".join(lines))
    return replace(change, path=new if new is not None else old, old_path=old)  # type: ignore[arg-type]


def _name_status(listing: bytes) -> tuple[list[tuple[str | None, str | None]], list[str]]:
    """(old path, new path) per patch entry of `git diff -z --name-status`, and the unmerged paths (which get
    no patch entry). A type change (file <-> link) is two patch entries: the old one deleted, the new added."""
    fields = [decode(f) for f in listing.split(b"\0")]
    entries: list[tuple[str | None, str | None]] = []
    unmerged: list[str] = []
    position = 0
    while position < len(fields) and fields[position]:
        status = fields[position][0]
        if status in "RC":
            entries.append((fields[position + 1], fields[position + 2]))
            position += 3
            continue
        name = fields[position + 1]
        position += 2
        if status == "U":
            unmerged.append(name)
        elif status == "T":
            entries += [(name, None), (None, name)]
        else:
            entries.append({"A": (None, name), "D": (name, None)}.get(status, (name, name)))
    return entries, unmerged


def untracked_changes(root: Path, pathspec: Sequence[str]) -> tuple[list[FileChange], list[Skipped]]:
    """New files git does not track yet, as added files: read here (regular files inside the repository only,
    bounded), so a link or special file among them is set aside instead of followed."""
    names = git(root, "ls-files", "--others", "--exclude-standard", "-z", "--", *pathspec).split(b"\0")
    changes: list[FileChange] = []
    skipped: list[Skipped] = []
    for name in map(decode, filter(None, names)):
        if name.endswith("/"):  # git lists a repository nested in the work tree as its folder, never its files
            skipped.append(Skipped(name.rstrip("/"), "a nested git repository: review it on its own"))
            continue
        try:
            check_relative_path(name)
            if os.path.islink(root / name):
                skipped.append(_untracked_link(root, name))
                continue
            data = read_beneath(root, name)
        except UnsafePath as unsafe:
            skipped.append(Skipped(name, unsafe.reason, refused=not isinstance(unsafe, FileTooLarge)))
            continue
        except OSError:
            continue  # gone since git listed it
        changes.append(added_file(name, data))
    return changes, skipped


def _untracked_link(root: Path, name: str) -> Skipped:
    target = os.path.realpath(root / name)
    inside = os.path.relpath(target, os.path.realpath(root))
    if inside == os.pardir or inside.startswith(os.pardir + os.sep):
        return Skipped(name, "a symbolic link that points outside the repository", refused=True)
    return Skipped(name, "a symbolic link: review reads only regular files")


def added_file(path: str, data: bytes) -> FileChange:
    """A new file as the change that adds it: one hunk of added lines, or a binary file (git's NUL rule)."""
    if b"\0" in data[:_BINARY_SNIFF]:
        return FileChange(path, None, "added", True, ())
    lines = decode(data).split("\n")
    if lines[-1] == "":
        lines.pop()
    added = tuple(DiffLine("+", line.rstrip("\r"), None, number) for number, line in enumerate(lines, start=1))
    return FileChange(path, None, "added", False, (Hunk(0, 1, added),) if added else ())
