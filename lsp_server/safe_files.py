"""Reading files that a repository names (diff paths, imports, untracked files) without leaving it.

A cloned repository is untrusted input: a committed symlink can point at ``~/.ssh/id_rsa`` or ``/dev/zero``, a
path in a diff can be ``../../etc/passwd``, a FIFO blocks whoever opens it. Everything here reads only regular
files beneath a root folder, never follows a symlink out of it, never opens a device or a FIFO, and reads at
most a bounded number of bytes. Refusals raise ``UnsafePath`` with a reason a person can read.

Why hand-written: the standard library has no "open beneath this directory" (Linux's openat2 RESOLVE_BENEATH is
not exposed), so the path is resolved, checked for containment, and then opened one component at a time with
O_NOFOLLOW from the root, so a link swapped in after the check fails closed instead of being followed.
"""

from __future__ import annotations

import os
import posixpath
import stat
from functools import lru_cache
from pathlib import Path

MAX_FILE_BYTES = 4 * 1024 * 1024  # larger files are skipped: generated or data, not code a person reviews
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO must not wait for a writer
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class UnsafePath(Exception):
    """A path that is not read; ``reason`` says why (outside the root, a link out, not a regular file...)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class FileTooLarge(UnsafePath):
    """Not hostile, merely too big to be code a person reviews."""


def check_relative_path(path: str) -> str:
    """``path`` if it is a plain relative path inside a repository ('/'-separated, as git writes them), else
    UnsafePath: empty, absolute, a NUL byte, a '..' component, or git's own folder (which holds credentials
    in remote URLs and hooks, never reviewable code)."""
    if not path:
        raise UnsafePath("an empty path")
    if "\0" in path:
        raise UnsafePath("a path with a NUL byte")
    if posixpath.isabs(path):
        raise UnsafePath("an absolute path: only paths inside the repository are read")
    parts = path.split("/")
    if ".." in parts:
        raise UnsafePath("a path that climbs out with '..'")
    if any(part.lower() == ".git" for part in parts):
        raise UnsafePath("a path inside git's own .git folder")
    return path


def read_beneath(root: Path, relative: str, max_bytes: int = MAX_FILE_BYTES, truncate: bool = False) -> bytes:
    """The bytes of the regular file ``root/relative``. Symlinks are followed only while they stay beneath
    ``root``. Raises UnsafePath for anything else, FileNotFoundError when there is no such file. A file over
    ``max_bytes`` is refused, or cut to ``max_bytes`` with ``truncate``."""
    check_relative_path(relative)
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, relative))
    inside = os.path.relpath(real, real_root)
    if inside == os.curdir or inside == os.pardir or inside.startswith(os.pardir + os.sep):
        raise UnsafePath("a symbolic link that points outside the repository")
    check_relative_path(inside.replace(os.sep, "/"))  # a link into .git is refused like the path itself
    return _read_from(real_root, inside.split(os.sep), max_bytes, truncate)


def read_contained(root: Path, path: str | Path, max_bytes: int = MAX_FILE_BYTES, truncate: bool = False) -> bytes:
    """Like read_beneath, for an absolute (or cwd-relative) ``path`` that must lie beneath ``root``."""
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if relative == os.curdir or relative.split(os.sep)[0] == os.pardir:
        raise UnsafePath("a path outside the project")
    return read_beneath(root, relative.replace(os.sep, "/"), max_bytes, truncate)


def _read_from(root: str, parts: list[str], max_bytes: int, truncate: bool) -> bytes:
    directory = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, os.O_RDONLY | _DIRECTORY | _NO_FOLLOW | _CLOEXEC, dir_fd=directory)
            except NotADirectoryError:
                raise UnsafePath("a path through something that is not a folder") from None
            except OSError as error:
                if error.errno == getattr(os, "ELOOP", -1):
                    raise UnsafePath("a path through a symbolic link that changed while it was read") from None
                raise
            os.close(directory)
            directory = inner
        return _read_regular(directory, parts[-1], max_bytes, truncate)
    finally:
        os.close(directory)


def _read_regular(directory: int, name: str, max_bytes: int, truncate: bool) -> bytes:
    before = os.stat(name, dir_fd=directory, follow_symlinks=False)
    _require_regular(before.st_mode)  # before opening: opening a device can have effects of its own
    try:
        handle = os.open(name, os.O_RDONLY | _NO_FOLLOW | _NONBLOCK | _CLOEXEC, dir_fd=directory)
    except OSError as error:
        if error.errno == getattr(os, "ELOOP", -1):
            raise UnsafePath("a symbolic link that changed while it was read") from None
        raise
    try:
        opened = os.fstat(handle)
        _require_regular(opened.st_mode)
        if (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino):
            raise UnsafePath("a file that was replaced while it was read")
        if opened.st_size > max_bytes and not truncate:
            raise FileTooLarge(f"larger than {_size(max_bytes)} ({_size(opened.st_size)})")
        with os.fdopen(handle, "rb", closefd=False) as stream:
            data = stream.read(max_bytes + 1)
    finally:
        os.close(handle)
    if len(data) > max_bytes:  # it grew after fstat
        if not truncate:
            raise FileTooLarge(f"larger than {_size(max_bytes)}")
        data = data[:max_bytes]
    return data


def _require_regular(mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = (
        "a symbolic link" if stat.S_ISLNK(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
        "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else
        "a folder" if stat.S_ISDIR(mode) else "not a regular file"
    )  # fmt: skip
    raise UnsafePath(f"{kind}: only regular files are read")


def _size(count: int) -> str:
    return f"{count / 1024 / 1024:.1f} MiB" if count >= 1024 * 1024 else f"{count} bytes"


@lru_cache(maxsize=256)
def project_root(folder: str) -> Path:
    """The nearest folder at or above ``folder`` that holds a .git entry (the repository), else ``folder``."""
    current = Path(folder)
    for candidate in (current, *current.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return current


def import_root(importer: str) -> Path:
    """The folder an importer's imports must lie in: its repository, else its own folder. read_import's answer
    depends on the importer only through this, so a cache of its answers is keyed by it."""
    return project_root(os.path.dirname(os.path.abspath(importer)))


def read_import(importer: str, candidate: str, max_bytes: int = 200_000) -> str | None:
    """The head of a file that ``importer`` imports, for prompt context, or None: only a regular file inside
    the importer's repository (its own folder outside any) is read, so an `#include "/etc/shadow"` or a
    module linked to ~/.ssh never reaches a prompt, and a FIFO or /dev/zero is never opened."""
    try:
        data = read_contained(import_root(importer), candidate, max_bytes, True)
    except (UnsafePath, OSError, ValueError):
        return None
    return data.decode("utf-8", "replace")
