"""The server's import context: the files a document imports are read for its prompt only when they lie inside
its own repository (safe_files.read_import), and the cache of those reads keeps to that rule for every importer.
Real files in real folders; the server's own method, with no client attached."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lsp_server.mimo_server import MimoServer

SHARED = "/* repository A's private header */\nint a_secret_number(void);\n"


@pytest.fixture
def two_repositories(tmp_path: Path) -> tuple[Path, Path]:
    """a/ and b/, each a repository (a .git folder), side by side; a/ has lib/shared.h."""
    a, b = tmp_path / "a", tmp_path / "b"
    for repository in (a, b):
        (repository / ".git").mkdir(parents=True)
    (a / "lib").mkdir()
    (a / "lib" / "shared.h").write_text(SHARED)
    (a / "main.c").write_text('#include "lib/shared.h"\nint main(void) { return 0; }\n')
    (b / "main.c").write_text('#include "../a/lib/shared.h"\nint main(void) { return 0; }\n')
    return a, b


def _open(server: MimoServer, path: Path):
    return server.documents.open(path.as_uri(), "c", path.read_text(), 1)


def _imported(server: MimoServer, path: Path) -> list[str]:
    document = _open(server, path)
    try:
        return [source.text for source in server.sources_for(document)]
    finally:
        server.documents.close(document.uri)


@pytest.mark.parametrize("a_first", [True, False])
def test_a_file_read_for_one_repository_is_not_served_to_another(two_repositories, a_first):
    a, b = two_repositories
    server = MimoServer("mimo-test", "0")
    if a_first:
        assert _imported(server, a / "main.c") == [SHARED]  # inside a/: read, and cached
    assert _imported(server, b / "main.c") == []  # outside b/: refused, cached or not
    assert _imported(server, a / "main.c") == [SHARED]
    assert _imported(server, b / "main.c") == []


def test_the_cache_still_serves_the_same_repository(two_repositories):
    """Two importers in one repository share the cached read; a change on disk is read again."""
    a, _ = two_repositories
    (a / "other.c").write_text('#include "lib/shared.h"\n')
    server = MimoServer("mimo-test", "0")
    assert _imported(server, a / "main.c") == [SHARED]
    assert len(server._imports) == 1
    assert _imported(server, a / "other.c") == [SHARED] and len(server._imports) == 1
    header = a / "lib" / "shared.h"
    header.write_text(SHARED + "int more(void);\n")
    stat = header.stat()
    os.utime(header, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert _imported(server, a / "other.c") == [SHARED + "int more(void);\n"]
