"""What `mimo train repo PATH...` reads: git repositories (tracked files only), plain folders, archives
(.tar, .tar.gz/.tgz, .tar.bz2, .tar.xz, .zip) and `installed:NAME` distributions.

Everything here is untrusted input: a cloned repository or a downloaded archive may hold symlinks that point
out of it, FIFOs, devices, absolute or `..` member names and compression bombs. Such entries are never read or
extracted; each is reported with its reason, like the files the data filters drop.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from training.data.collect import Source, list_files
from training.data.corpus import INSTALLED_PREFIX, resolve_installed
from training.errors import UserError

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
MAX_ARCHIVE_BYTES = 2 * 1024**3  # what all archives together may unpack to
MAX_MEMBER_BYTES = 10 * 1024**2  # bigger members are skipped unread (the data filter drops files over 1 MB)


@dataclass(frozen=True)
class Rejection:
    source: str
    path: str
    reason: str  # a short stable word: symlink-outside, not-regular, unsafe-name, huge, vendored, loss-high, ...
    stage: str  # "source", "filter", "dedup", "loss"
    detail: str = ""

    def as_dict(self) -> dict:
        return {"source": self.source, "path": self.path, "stage": self.stage, "reason": self.reason,
                "detail": self.detail}  # fmt: skip


@dataclass
class Resolved:
    sources: list[Source] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def resolve_sources(specs: list[str], unpack_dir: Path) -> Resolved:
    """Sources for the command line's specs; archives are unpacked (safely) under `unpack_dir`."""
    if not specs:
        raise UserError("no sources given: name git repositories, folders or archives (PATH or NAME=PATH)")
    resolved = Resolved()
    for spec in specs:
        if spec.startswith(INSTALLED_PREFIX):
            resolved.sources.extend(resolve_installed(spec))
            continue
        name, _, location = spec.rpartition("=") if "=" in spec else ("", "", spec)
        path = Path(location).expanduser()
        if not path.exists():
            raise UserError(f"source {location!r} does not exist; give a git repository, a folder or an archive")
        if path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES):
            name = name or _archive_stem(path.name)
            target = unpack_dir / name
            resolved.rejected += unpack(path, target, name)
            resolved.sources.append(Source(name=name, root=target.resolve()))
        elif path.is_dir():
            resolved.sources.append(Source(name=name or path.resolve().name, root=path.resolve()))
        else:
            raise UserError(f"source {location!r} is neither a folder nor an archive ({', '.join(ARCHIVE_SUFFIXES)})")
    names = [source.name for source in resolved.sources]
    if clashes := sorted({name for name in names if names.count(name) > 1}):
        raise UserError(f"source name(s) {', '.join(clashes)} given twice; name them apart with NAME=PATH")
    resolved.sources = [_confined(source, resolved.rejected) for source in resolved.sources]
    return resolved


def _archive_stem(filename: str) -> str:
    lower = filename.lower()
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return filename[: -len(suffix)] or "archive"
    return filename


def _confined(source: Source, rejected: list[Rejection]) -> Source:
    """The source with its file list fixed to regular files inside its root: a symlink leading out of the
    repository, a FIFO or a device is reported, never opened."""
    root = source.root.resolve()
    kept = []
    for path in list_files(source):
        full = source.root / path
        try:
            real = full.resolve(strict=True)
            mode = os.stat(real).st_mode
        except (OSError, RuntimeError):
            rejected.append(Rejection(source.name, path, "unreadable", "source", "missing or a symlink loop"))
            continue
        if not real.is_relative_to(root) and source.files is None:
            rejected.append(Rejection(source.name, path, "symlink-outside", "source", f"points to {real}"))
        elif not stat.S_ISREG(mode):
            rejected.append(Rejection(source.name, path, "not-regular", "source", "a FIFO, device or socket"))
        else:
            kept.append(path)
    return Source(name=source.name, root=source.root, files=tuple(kept), license=source.license)


def unpack(archive: Path, target: Path, name: str) -> list[Rejection]:
    """Extracts the regular files of a tar or zip archive into `target`; everything else is reported."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        if archive.name.lower().endswith(".zip"):
            return _unzip(archive, target, name)
        return _untar(archive, target, name)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        raise UserError(f"{archive}: not a readable archive ({error}); give a .tar(.gz/.bz2/.xz) or .zip") from None


def _member_problem(member_name: str) -> str | None:
    pure = PurePosixPath(member_name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        return "unsafe-name"
    return None


def _untar(archive: Path, target: Path, name: str) -> list[Rejection]:
    rejected, total = [], 0
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isdir():
                continue
            reason = _member_problem(member.name) or _tar_kind(member)
            if reason is None and member.size > MAX_MEMBER_BYTES:
                reason = "huge"
            if reason is None and total + member.size > MAX_ARCHIVE_BYTES:
                raise UserError(f"{archive} unpacks to more than {MAX_ARCHIVE_BYTES >> 30} GiB; unpack it yourself")
            if reason:
                rejected.append(Rejection(name, member.name, reason, "source", "archive member not extracted"))
                continue
            total += member.size
            extracted = tar.extractfile(member)
            _write_member(target, member.name, extracted.read(MAX_MEMBER_BYTES + 1) if extracted else b"")
    return rejected


def _tar_kind(member: tarfile.TarInfo) -> str | None:
    if member.issym() or member.islnk():
        return "link"
    return None if member.isfile() else "not-regular"


def _unzip(archive: Path, target: Path, name: str) -> list[Rejection]:
    rejected, total = [], 0
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            if info.is_dir():
                continue
            mode = info.external_attr >> 16
            reason = _member_problem(info.filename)
            if reason is None and stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: written without a file type
                reason = "link" if stat.S_ISLNK(mode) else "not-regular"
            if reason is None and info.file_size > MAX_MEMBER_BYTES:
                reason = "huge"
            if reason is None and total + info.file_size > MAX_ARCHIVE_BYTES:
                raise UserError(f"{archive} unpacks to more than {MAX_ARCHIVE_BYTES >> 30} GiB; unpack it yourself")
            if reason:
                rejected.append(Rejection(name, info.filename, reason, "source", "archive member not extracted"))
                continue
            total += info.file_size
            with zipped.open(info) as stream:  # reads at most the declared size + 1: a lying header is cut off
                _write_member(target, info.filename, stream.read(MAX_MEMBER_BYTES + 1))
    return rejected


def _write_member(target: Path, member_name: str, data: bytes) -> None:
    destination = target / PurePosixPath(member_name.replace("\\", "/"))
    destination.parent.mkdir(parents=True, exist_ok=True)
    # O_NOFOLLOW: an earlier member can never have planted a symlink here (links are not extracted), but be sure.
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data[: MAX_MEMBER_BYTES + 1])
