"""Sources of `mimo train repo`: git repositories (tracked files only), folders, archives; hostile entries."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile

import pytest

from training.data.collect import list_files
from training.errors import UserError
from training.repo.sources import resolve_sources


def _reasons(resolved) -> dict[str, str]:
    return {rejection.path: rejection.reason for rejection in resolved.rejected}


def test_a_git_repository_gives_its_tracked_files_only(code_repo, tmp_path):
    resolved = resolve_sources([str(code_repo)], tmp_path / "unpack")
    [source] = resolved.sources
    files = list_files(source)
    assert "pkg/mod3.py" in files and "vendor/lib.py" in files
    assert "untracked.py" not in files  # on disk, never committed


def test_symlinks_out_fifos_and_devices_are_reported_never_read(tmp_path):
    root = tmp_path / "folder"
    root.mkdir()
    (root / "good.py").write_text("x = 1\n")
    (root / "inside.py").symlink_to(root / "good.py")  # a link within the repository is fine
    (root / "secret.py").symlink_to("/etc/passwd")
    (root / "loop.py").symlink_to(root / "loop.py")
    os.mkfifo(root / "pipe.py")
    resolved = resolve_sources([f"mine={root}"], tmp_path / "unpack")
    [source] = resolved.sources
    assert source.name == "mine"
    assert sorted(source.files) == ["good.py", "inside.py"]
    assert _reasons(resolved) == {"secret.py": "symlink-outside", "loop.py": "unreadable", "pipe.py": "not-regular"}


def _tar(path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)


def _info(name: str, kind=tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def test_a_hostile_tarball_unpacks_only_its_regular_files(tmp_path):
    archive = tmp_path / "project-1.0.tar.gz"
    _tar(archive, [
        (_info("project/pkg/a.py"), b"def a():\n    return 1\n"),
        (_info("../escape.py"), b"bad = 1\n"),
        (_info("/etc/absolute.py"), b"bad = 1\n"),
        (_info("project/link.py", tarfile.SYMTYPE, "/etc/passwd"), b""),
        (_info("project/hard.py", tarfile.LNKTYPE, "project/pkg/a.py"), b""),
        (_info("project/fifo", tarfile.FIFOTYPE), b""),
        (_info("project/dev", tarfile.CHRTYPE), b""),
    ])  # fmt: skip
    unpack = tmp_path / "unpack"
    resolved = resolve_sources([str(archive)], unpack)
    [source] = resolved.sources
    assert source.name == "project-1.0"
    assert list(source.files) == ["project/pkg/a.py"]
    assert _reasons(resolved) == {
        "../escape.py": "unsafe-name", "/etc/absolute.py": "unsafe-name", "project/link.py": "link",
        "project/hard.py": "link", "project/fifo": "not-regular", "project/dev": "not-regular",
    }  # fmt: skip
    assert not (tmp_path / "escape.py").exists() and not list(unpack.rglob("escape.py"))


def test_a_hostile_zip_unpacks_only_its_regular_files(tmp_path):
    archive = tmp_path / "code.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("pkg/b.py", "b = 2\n")
        zipped.writestr("../../escape.py", "bad = 1\n")
        link = zipfile.ZipInfo("pkg/link.py")
        link.external_attr = 0o120777 << 16  # a symlink entry, as `zip --symlinks` writes it
        zipped.writestr(link, "/etc/passwd")
    resolved = resolve_sources([str(archive)], tmp_path / "unpack")
    assert list(resolved.sources[0].files) == ["pkg/b.py"]
    assert _reasons(resolved) == {"../../escape.py": "unsafe-name", "pkg/link.py": "link"}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text("not an archive"), "neither a folder nor an archive"),
        (lambda p: None, "no sources given"),
    ],
)
def test_bad_sources_are_user_errors(tmp_path, make, message):
    target = tmp_path / "thing.txt"
    make(target)
    specs = [] if message == "no sources given" else [str(target)]
    with pytest.raises(UserError, match=message):
        resolve_sources(specs, tmp_path / "unpack")


def test_a_corrupt_archive_and_a_name_given_twice_are_user_errors(tmp_path, code_repo):
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(UserError, match="not a readable archive"):
        resolve_sources([str(broken)], tmp_path / "unpack")
    with pytest.raises(UserError, match="given twice"):
        resolve_sources([f"x={code_repo}", f"x={code_repo}"], tmp_path / "unpack")
