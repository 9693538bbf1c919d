"""FIM round trip and import-order repository packing."""

from __future__ import annotations

import numpy as np
import pytest

from engine.special_tokens import FILE_SEP, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, REPO_NAME
from training.data.collect import Document
from training.data.fim import FimConfig, Special, apply_fim, defim, fim_pieces, line_chunks, psm, spm
from training.data.pack import dependency_graph, import_order, pack_repository

CODE = "def area(r):\n    return 3.14159 * r * r\n\nprint(area(2))  # <|fim_prefix|> in a comment stays text\n"


def test_psm_and_spm_layouts():
    assert "".join(psm("a", "b", "c")) == f"{FIM_PREFIX}a{FIM_SUFFIX}c{FIM_MIDDLE}b"
    assert "".join(spm("a", "b", "c")) == f"{FIM_PREFIX}{FIM_SUFFIX}c{FIM_MIDDLE}ab"


@pytest.mark.parametrize("seed", range(40))
def test_defim_gives_back_the_original(seed):
    rng = np.random.default_rng(seed)
    text = CODE * (seed % 3 + 1) if seed % 5 else ""
    assert defim(apply_fim(text, rng, FimConfig(rate=1.0, spm_rate=0.5))) == text


@pytest.mark.parametrize("seed", range(10))
def test_long_files_are_transformed_piece_by_piece_and_defim_gives_them_back(seed):
    rng = np.random.default_rng(seed)
    text = CODE * 40  # ~3,600 characters
    pieces = fim_pieces(text, rng, FimConfig(rate=1.0, chunk_chars=500))
    assert len(pieces) > 6 and all(piece[0] == FIM_PREFIX for piece in pieces)
    assert all(len(defim(piece)) <= 500 for piece in pieces)
    assert "".join(defim(piece) for piece in pieces) == text


def test_line_chunks_cut_at_line_ends_and_keep_overlong_lines_whole():
    text = "a = 1\n" * 10 + "x" * 50 + "\n" + "b = 2\n" * 3
    chunks = line_chunks(text, 20)
    assert "".join(chunks) == text
    assert all(chunk.endswith("\n") for chunk in chunks)
    assert max(len(chunk) for chunk in chunks) == 51  # the one long line, alone
    assert line_chunks(text, 0) == [text]


def test_rates_are_followed_and_both_orders_appear():
    rng = np.random.default_rng(0)
    documents = [apply_fim(CODE, rng) for _ in range(2000)]
    transformed = [d for d in documents if len(d) > 1]
    spm_count = sum(1 for d in transformed if d[1] == FIM_SUFFIX)
    assert 0.45 < len(transformed) / 2000 < 0.55
    assert 0.40 < spm_count / len(transformed) < 0.60
    assert all(isinstance(d[0], Special) for d in transformed)
    assert all(not isinstance(d[0], Special) for d in documents if len(d) == 1)


def test_spans_are_character_level():
    """Cuts land anywhere, including inside identifiers (not only at line or token boundaries)."""
    rng = np.random.default_rng(1)
    prefixes = [apply_fim(CODE, rng, FimConfig(rate=1.0, spm_rate=0.0))[1] for _ in range(200)]
    inside_word = [p for p in prefixes if p and p[-1].isalnum() and CODE[len(p)].isalnum()]
    assert inside_word
    assert len({len(p) for p in prefixes}) > 30


def _doc(path: str, text: str, language: str = "python") -> Document:
    return Document("repo", path, language, text)


def test_python_imports_resolve_absolute_relative_and_submodule():
    documents = [
        _doc("pkg/__init__.py", "from .core import run\n"),
        _doc("pkg/core.py", "import os\nfrom pkg import util\n"),
        _doc("pkg/util.py", "from . import helpers as h\n"),
        _doc("pkg/helpers.py", "x = 1\n"),
        _doc("main.py", "import pkg.core, json\nfrom pkg.helpers import x\n"),
    ]
    graph = dependency_graph(documents)
    assert graph["pkg/__init__.py"] == {"pkg/core.py"}
    assert graph["pkg/core.py"] == {"pkg/util.py", "pkg/__init__.py"}
    assert graph["pkg/util.py"] == {"pkg/helpers.py", "pkg/__init__.py"}
    assert graph["main.py"] == {"pkg/core.py", "pkg/helpers.py"}


def test_order_puts_dependencies_first():
    order = import_order({"app.py": {"models.py", "db.py"}, "models.py": {"db.py"}, "db.py": set()})
    assert order == ["db.py", "models.py", "app.py"]


def test_a_cycle_is_tolerated_and_every_file_placed_once():
    graph = {"a.py": {"b.py"}, "b.py": {"c.py"}, "c.py": {"a.py"}, "d.py": {"a.py"}, "base.py": set()}
    order = import_order(graph)
    assert sorted(order) == sorted(graph)
    assert order[0] == "base.py"
    assert order.index("d.py") > order.index("a.py")


def test_js_and_c_relative_imports():
    documents = [
        _doc("src/app.ts", "import { f } from './lib/util';\nconst g = require('../x.js');\n", "typescript"),
        _doc("src/lib/util.ts", "export const f = 1;\n", "typescript"),
        _doc("x.js", "module.exports = 1;\n", "javascript"),
        _doc("main.c", '#include "util.h"\n#include <stdio.h>\n', "c"),
        _doc("include/util.h", "int f(void);\n", "c"),
    ]
    graph = dependency_graph(documents)
    assert graph["src/app.ts"] == {"src/lib/util.ts", "x.js"}
    assert graph["main.c"] == {"include/util.h"}


def test_packed_repository_has_header_and_file_separators_in_order():
    documents = [_doc("b.py", "import a\nB = a.A\n"), _doc("a.py", "A = 1\n")]
    blocks = pack_repository("demo", documents, lambda d: [d.text])
    text = "".join(segment for block in blocks for segment in block.segments)
    assert text == f"{REPO_NAME}demo\n{FILE_SEP}a.py\nA = 1\n\n{FILE_SEP}b.py\nimport a\nB = a.A\n\n"
    assert [b.document.path if b.document else None for b in blocks] == [None, "a.py", "b.py"]
