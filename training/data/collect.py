"""Sources and the files in them: `git ls-files` in a repository (so .gitignore is respected), else a walk.

A source is one repository or folder (or an explicit file list, as for an installed package); it becomes one
packed document per training pass. Every file left out is counted under its reason.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from training.data.filters import DEFAULT_MAX_BYTES, VENDOR_DIRS, content_skip_reason, language_of, path_skip_reason
from training.data.licenses import License
from training.errors import UserError


@dataclass(frozen=True)
class Source:
    name: str
    root: Path
    files: tuple[str, ...] | None = None  # root-relative posix paths; None: `git ls-files`, else a walk
    license: License | None = None  # known up front (installed packages); None: read from the root


@dataclass
class Document:
    source: str
    path: str  # root-relative, posix
    language: str
    text: str


@dataclass
class Collected:
    documents: list[Document] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)  # reason -> files


def source_from_path(spec: str) -> Source:
    """A command-line source: `PATH` or `NAME=PATH`; the name defaults to the folder's name."""
    name, _, location = spec.rpartition("=") if "=" in spec else ("", "", spec)
    root = Path(location).expanduser().resolve()
    if not root.is_dir():
        raise UserError(f"source {location!r} is not a directory; give a git repository or a folder of code")
    return Source(name=name or root.name, root=root)


def list_files(source: Source) -> list[str]:
    if source.files is not None:
        return list(source.files)
    if (source.root / ".git").exists():
        return _git_files(source.root)
    return _walk(source.root)


def _git_files(root: Path) -> list[str]:
    result = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached"], capture_output=True, check=False, timeout=120
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["git failed"]
        raise UserError(f"{root}: git ls-files failed: {message[0]}")
    return sorted(path for path in result.stdout.decode("utf-8", errors="surrogateescape").split("\0") if path)


def _walk(root: Path) -> list[str]:
    paths = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d not in VENDOR_DIRS)
        relative = Path(directory).relative_to(root)
        paths.extend((relative / name).as_posix() for name in sorted(files) if not name.startswith("."))
    return paths


def collect(source: Source, max_bytes: int = DEFAULT_MAX_BYTES, progress=None, on_drop=None) -> Collected:
    """Reads the source's files that pass every filter; `progress(n)` is called per file if given, and
    `on_drop(path, reason)` for each file left out (for a per-file report)."""
    collected = Collected()
    for path, reason, text in read_files(source, max_bytes):
        if reason:
            collected.dropped[reason] += 1
            if on_drop:
                on_drop(path, reason)
        else:
            collected.documents.append(Document(source.name, path, language_of(path), text))
        if progress:
            progress(1)
    return collected


def read_files(source: Source, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[tuple[str, str | None, str | None]]:
    """(path, None, text) for each file that passes every filter, (path, reason, None) for each left out; in
    path order, one file in memory at a time."""
    for path in list_files(source):
        reason, text = _read(source.root, path, max_bytes)
        yield path, reason, text


def _read(root: Path, path: str, max_bytes: int) -> tuple[str | None, str | None]:
    reason = path_skip_reason(path)
    if reason:
        return reason, None
    full = root / path
    try:
        if not full.is_file():
            return "unreadable", None
        if full.stat().st_size > max_bytes:
            return "huge", None
        data = full.read_bytes()
    except OSError:
        return "unreadable", None
    return content_skip_reason(data, max_bytes)
