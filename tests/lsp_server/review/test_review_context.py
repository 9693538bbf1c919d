"""Review units: enclosing scope and imports from tree-sitter, token budgets, chunking of large diffs."""

from __future__ import annotations

from lsp_server.review.contents import file_contents
from lsp_server.review.context import estimate_tokens, pack_chunks, unit_cost, units_for_file
from lsp_server.review.prompts import review_messages
from lsp_server.review.sources import DiffSource, read_diff

MODULE = """import os
from pathlib import Path


def helper():
    return 1


class Store:
    def load(self, name):
        path = Path(name)
        if not path.exists():
            raise FileNotFoundError(name)
        size = path.stat().st_size
        data = path.read_text()
        return data
"""


def _units(repo, before: str, after: str, budget: int = 2000, path: str = "store.py"):
    repo.write(path, before)
    repo.commit()
    repo.write(path, after)
    diff = read_diff(DiffSource(), repo.root)
    _, after_bytes = file_contents(diff, diff.files[0])
    return units_for_file(diff.files[0], after_bytes.decode(), budget)


def test_a_unit_carries_its_enclosing_method_and_the_imports(repo):
    after = MODULE.replace("        return data\n", "        data = data.strip()\n        return data\n")
    (unit,) = _units(repo, MODULE, after)
    assert unit.scope.startswith("function_definition load (lines 10-")
    assert "path.read_text()" in unit.scope_text  # the method's body beyond the hunk
    assert unit.imports == "import os\nfrom pathlib import Path"
    assert unit.added_lines == {16}
    prompt = review_messages([unit])[1].content
    assert "   16 + " in prompt and "import os" in prompt


def test_a_hunk_larger_than_the_budget_is_split_into_pieces_that_fit(repo):
    body = "".join(f"    value_{i} = compute({i}, 'some argument text')\n" for i in range(200))
    units = _units(repo, "def big():\n    pass\n", "def big():\n" + body, budget=400)
    assert len(units) > 5
    added = sorted(n for unit in units for n in unit.added_lines)
    assert added == list(range(2, 202))  # every added line is in exactly one piece
    line_tokens = [sum(estimate_tokens(line.text) + 2 for line in u.lines) for u in units]
    assert max(line_tokens) <= 400


def test_chunks_pack_units_within_the_budget_in_order(repo):
    before = "".join(f"def f{i}():\n    return {i}\n\n\n" for i in range(30))
    after = before.replace("return 3\n", "return 33\n").replace("return 17\n", "return 71\n")
    after = after.replace("return 25\n", "return 52\n")
    units = _units(repo, before, after)
    assert len(units) == 3
    cost = unit_cost(units[0])
    assert [len(c) for c in pack_chunks(units, budget=cost * 2)] == [2, 1]
    assert [len(c) for c in pack_chunks(units, budget=10_000)] == [3]
    assert [u for chunk in pack_chunks(units, budget=1) for u in chunk] == units  # over budget: one per chunk


def test_the_content_key_ignores_line_numbers_but_not_content(repo):
    (unit,) = _units(repo, MODULE, MODULE.replace("return 1", "return 2"))
    shifted = unit.__class__(unit.path, unit.language, tuple(
        line.__class__(line.kind, line.text, None if line.old_line is None else line.old_line + 5,
                       None if line.new_line is None else line.new_line + 5) for line in unit.lines),
        unit.scope, unit.scope_text, unit.imports)  # fmt: skip
    assert shifted.content_key("m", "v") == unit.content_key("m", "v")
    assert unit.content_key("other-model", "v") != unit.content_key("m", "v")


def test_files_without_a_grammar_still_make_units(repo):
    (unit,) = _units(repo, "a\n", "a\nb\n", path="notes.txt")
    assert unit.language is None and unit.scope == "" and unit.added_lines == {2}


def test_pure_deletions_make_no_units(repo):
    assert _units(repo, MODULE, MODULE.replace("def helper():\n    return 1\n", "")) == []
