"""lsp_server.safe_files on a real file tree, and its users outside review: the imported-file context of
completions (`mimo complete`, the language server) never reads outside the importing file's repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lsp_server.documents import Document
from lsp_server.safe_files import FileTooLarge, UnsafePath, read_beneath, read_contained, read_import
from lsp_server.shell import import_sources

SECRET = "s3cret-from-outside"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.h").write_text(f"int token = {SECRET};\n")
    (outside / "secret.py").write_text(f"TOKEN = '{SECRET}'\n")
    os.mkfifo(outside / "pipe")
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "src").mkdir()
    (project / "src" / "util.py").write_text("def helper():\n    return 1\n")
    (project / "src" / "local.h").write_text("int local;\n")
    os.symlink(outside / "secret.py", project / "src" / "leaky.py")
    os.symlink("/dev/zero", project / "src" / "zero.py")
    os.symlink(outside / "pipe", project / "src" / "piped.py")
    os.mkfifo(project / "src" / "fifo.py")
    os.symlink("util.py", project / "src" / "alias.py")  # a link that stays inside is fine
    return project


def test_reads_regular_files_and_links_that_stay_inside(tree):
    assert read_beneath(tree, "src/util.py").startswith(b"def helper")
    assert read_beneath(tree, "src/alias.py").startswith(b"def helper")
    assert read_contained(tree, tree / "src" / "util.py") == read_beneath(tree, "src/util.py")


@pytest.mark.parametrize(
    "relative, reason",
    [("src/leaky.py", "points outside"), ("src/zero.py", "points outside"), ("src/piped.py", "points outside"),
     ("src/fifo.py", "a FIFO"), ("src", "a folder"), ("../outside/secret.py", "'..'"), (".git/config", ".git")],
)  # fmt: skip
def test_refuses_links_out_special_files_and_escapes(tree, relative, reason):
    with pytest.raises(UnsafePath, match=reason):
        read_beneath(tree, relative)


def test_a_file_larger_than_the_bound_is_refused_or_cut(tree):
    (tree / "big.txt").write_bytes(b"x" * 5000)
    with pytest.raises(FileTooLarge):
        read_beneath(tree, "big.txt", max_bytes=1000)
    assert read_beneath(tree, "big.txt", max_bytes=1000, truncate=True) == b"x" * 1000


def _document(path: Path, text: str, language: str) -> Document:
    return Document(uri=path.as_uri(), language=language, text=text)


def test_imported_context_stays_inside_the_repository(tree, tmp_path):
    main = tree / "src" / "main.py"
    text = "import util\nimport leaky\nimport zero\nimport piped\nimport fifo\nimport alias\n"
    sources = import_sources(_document(main, text, "python"))
    assert sorted(Path(s.path).name for s in sources) == ["alias.py", "util.py"]
    assert all(SECRET not in s.text for s in sources)


def test_c_includes_of_absolute_and_climbing_paths_are_not_read(tree, tmp_path):
    main = tree / "src" / "main.c"
    secret = tmp_path / "outside" / "secret.h"
    text = f'#include "local.h"\n#include "{secret}"\n#include "../../outside/secret.h"\n'
    sources = import_sources(_document(main, text, "c"))
    assert [Path(s.path).name for s in sources] == ["local.h"]
    assert read_import(str(main), str(secret)) is None
