"""The prompt: prefix/suffix within budget cut at statement boundaries, header, cross-file snippets, imports."""

from __future__ import annotations

from lsp_server import context as ctx
from lsp_server.documents import Document


def _module(functions: int) -> str:
    return "".join(f"def f{i}(x):\n    y = (x +\n         {i})\n    return y\n\n" for i in range(functions))


def test_a_small_file_is_sent_whole_with_a_path_and_language_header():
    doc = Document("file:///w/pkg/m.py", "python", "import os\n\nx = 1\n")
    fim = ctx.build_fim(doc, 10, [], budget_tokens=1000)
    assert (fim.prefix, fim.suffix) == ("import os\n", "\nx = 1\n")
    assert "# Path: " in fim.header and "# Language: python" in fim.header


def test_long_prefix_and_suffix_are_cut_at_statement_boundaries_within_budget():
    text = _module(200)
    doc = Document("file:///w/m.py", "python", text)
    offset = text.index("def f100")
    fim = ctx.build_fim(doc, offset, [], budget_tokens=300)
    assert len(fim.header) + len(fim.prefix) + len(fim.suffix) <= 300 * ctx.CHARS_PER_TOKEN
    first_line = fim.prefix.split("\n", 1)[0]
    assert first_line.startswith(("def f", "    y = (", "    return y"))  # never inside the 2-line expression
    assert fim.suffix.endswith("\n") and fim.suffix.rstrip().endswith("return y")


def test_the_most_similar_window_of_another_file_goes_into_the_header():
    doc = Document("file:///w/app.py", "python", "def total(order):\n    price = order.price * order.quantity\n    ")
    helper = ctx.Source("/w/pricing.py", "def price_of(order):\n    return order.price * order.quantity\n")
    unrelated = ctx.Source("/w/log.py", "import logging\nlogging.basicConfig(level=logging.INFO)\n")
    fim = ctx.build_fim(doc, len(doc.text), [unrelated, helper], budget_tokens=1000)
    assert "# Compare this snippet from /w/pricing.py:" in fim.header
    assert "#     return order.price * order.quantity" in fim.header
    assert "logging" not in fim.header


def test_jaccard_similarity():
    assert ctx.jaccard(frozenset("ab"), frozenset("bc")) == 1 / 3
    assert ctx.jaccard(frozenset(), frozenset("a")) == 0.0


def test_import_candidates_for_python_js_and_c():
    py = ctx.import_candidates("/w/pkg/app.py", "from .models import User\nimport util.text\n", "python")
    assert "/w/pkg/models.py" in py and "/w/pkg/util/text.py" in py
    js = ctx.import_candidates("/w/src/app.ts", "import { a } from './lib/a';\n", "typescript")
    assert "/w/src/lib/a.ts" in js
    c = ctx.import_candidates("/w/src/main.c", '#include "util.h"\n#include <stdio.h>\n', "c")
    assert c == ["/w/src/util.h"]
