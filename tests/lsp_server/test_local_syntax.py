"""The local syntax completions use (Document.syntax_near): the statements around the cursor, parsed alone, must
give the verdicts of the whole-file check, also when the file's tree is outdated by edits not parsed yet."""

from __future__ import annotations

import pytest

from lsp_server import syntax
from lsp_server.completion import decide_mode
from lsp_server.context import build_fim
from lsp_server.documents import Document, Pos
from lsp_server.postprocess import FilterContext, block_end

CURSOR = "║"

CLASS = """import os


class Shop:
    def total(self, order):
        price = order.price * order.quantity
        ‹body›
        return price
    ‹between methods›
    def name(self):
        if self:
            return "shop"
        ‹after a method's last statement›
‹between top-level statements›
def helper(x):
    return x
"""
CURSORS = ["‹body›", "‹between methods›", "‹after a method's last statement›", "‹between top-level statements›"]

CANDIDATES = [
    "tax = price * 0.2",  # fine
    "tax = round(price",  # an unclosed call
    'note = """unterminated',  # a string that never ends
    "if price:",  # a header without a body
    "x = 1\n          y = 2",  # an unexpected indent
    "x = 1\n      y = 2",  # a dedent to no enclosing level
    "x = 1\n\n    def extra(self):\n        pass",  # a dedent to the class level: valid
    "x = 1\nTOP = 2",  # a dedent to the top level, with the method's indented rest after it: invalid
    "1return",  # glued tokens: CPython refuses them, tree-sitter does not mind
]


def _document(marked: str, language: str = "python") -> tuple[Document, int]:
    offset = marked.index(CURSOR)
    return Document(f"file:///t.{language}", language, marked.replace(CURSOR, "")), offset


def _class_at(cursor: str) -> tuple[Document, int]:
    marked = CLASS.replace(cursor, CURSOR)
    for other in CURSORS:
        marked = marked.replace(other, "")
    return _document(marked)


def _whole_file_verdict(document: Document, offset: int, inserted: str) -> bool:
    after = document.text[:offset] + inserted + document.text[offset:]
    return syntax.adds_syntax_errors(document.text, after, document.language)


@pytest.mark.parametrize("cursor", CURSORS)
@pytest.mark.parametrize("inserted", CANDIDATES)
def test_the_local_check_agrees_with_the_whole_file_check(inserted, cursor):
    document, offset = _class_at(cursor)
    near = document.syntax_near(offset)
    assert near.insertion_adds_errors(inserted) == _whole_file_verdict(document, offset, inserted)


@pytest.mark.parametrize("inserted", CANDIDATES)
def test_the_local_check_agrees_after_edits_the_tree_has_not_seen(inserted):
    document, offset = _class_at("‹body›")
    _ = document.tree  # parsed once, as on didOpen; the edits below are only applied to it
    row = document.position_at(offset).line
    document.apply_change("        discount = 0\n", Pos(row, 0), Pos(row, 0))
    document.apply_change("", Pos(1, 0), Pos(2, 0))  # an edit far above shifts every row
    assert (document.line(row - 1), document.line(row)) == ("        discount = 0", "        ")
    offset = document.offset_at(Pos(row, 8))
    near = document.syntax_near(offset)
    assert near.insertion_adds_errors(inserted) == _whole_file_verdict(document, offset, inserted)


@pytest.mark.parametrize(
    ("marked", "language", "inserted"),
    [
        ("x = 1║\n", "python", "return a + b"),
        ("x = 1║\n", "python", " + 2"),
        ("def f():\n    ║\n", "python", "return 1"),
        ("def f():\n    ║\n", "python", "return (1"),
        ("const total = ║\nconsole.log(total);\n", "javascript", "items.length;"),
        ("function f() {\n  return ║;\n}\n", "javascript", "a + b"),
        ("function f() {\n  return ║;\n}\n", "javascript", "a + (b"),
        ("fn f() -> i32 {\n    ║\n}\n", "rust", "let a = 1;"),
        ("fn f() -> i32 {\n    ║\n}\n", "rust", "let a = {;"),
    ],
)
def test_the_local_check_agrees_in_small_files_and_other_languages(marked, language, inserted):
    document, offset = _document(marked, language)
    near = document.syntax_near(offset)
    assert near.insertion_adds_errors(inserted) == _whole_file_verdict(document, offset, inserted)


def test_the_region_is_the_statements_around_the_cursor_not_the_whole_class():
    methods = "".join(f"    def m{i}(self):\n        return {i}\n\n" for i in range(300))
    document, offset = _document(f"class Big:\n{methods}    def last(self):\n        x = 1\n        ║\n")
    near = document.syntax_near(offset)
    assert near.region.last_row - near.region.first_row <= 2
    assert near.region.block_rows == (1, document.line_count - 3)  # the class body, the method body


@pytest.mark.parametrize(
    ("cursor", "first_line", "block_rows"),
    [
        ("‹body›", "        price = order.price * order.quantity", (4, 5)),
        ("‹between methods›", "    def total(self, order):", (4,)),
        ("‹after a method's last statement›", "        if self:", (4, 10)),  # the method's body, not the if's
        ("‹between top-level statements›", "class Shop:", ()),
    ],
)
def test_the_region_follows_the_indentation_of_the_cursor(cursor, first_line, block_rows):
    document, offset = _class_at(cursor)
    near = document.syntax_near(offset)
    assert (document.line(near.region.first_row), near.region.block_rows) == (first_line, block_rows)


def test_a_statement_with_a_syntax_error_widens_the_region_to_the_enclosing_block():
    document, offset = _document("def f():\n    a = (1,\n    ║\n    b = 2\n\n\ndef g():\n    pass\n")
    near = document.syntax_near(offset)
    assert not near.region.nested and near.region.first_row == 0


def test_other_languages_use_top_level_regions():
    document, offset = _document("class A {\n  f() {\n    return ║;\n  }\n}\n\nlet b = 2;\n", "javascript")
    near = document.syntax_near(offset)
    assert (near.region.first_row, near.region.last_row, near.region.nested) == (0, 4, False)


def _long_module(functions: int = 400) -> str:
    return "".join(f"def step_{i}(value):\n    total = value * {i}\n    return total\n\n\n" for i in range(functions))


def test_a_completion_after_an_edit_parses_only_the_lines_around_the_cursor(monkeypatch):
    document = Document("file:///long.py", "python", _long_module())
    _ = document.tree  # the parse after didOpen
    document.apply_change("    \n", Pos(1001, 0), Pos(1001, 0))
    parsed: list[int] = []  # the length of each text parsed
    real_parse = syntax.parse

    def recording_parse(text, *args, **kwargs):
        parsed.append(len(text))
        return real_parse(text, *args, **kwargs)

    monkeypatch.setattr(syntax, "parse", recording_parse)
    offset = document.offset_at(Pos(1001, 4))
    decide_mode(document, offset)
    build_fim(document, offset, [], budget_tokens=1536)
    document.syntax_near(offset).insertion_adds_errors("pass")
    assert parsed and max(parsed) < 200, "only the function at the cursor is parsed, never the file"
    assert document._stale, "the whole-file re-parse waits until a feature needs the exact tree"


def test_rows_outside_the_region_are_answered_from_the_edited_tree_as_a_fresh_parse_would():
    document = Document("file:///long.py", "python", _long_module(60))
    _ = document.tree  # parse now
    document.apply_change("    extra = 1\n", Pos(101, 0), Pos(101, 0))
    document.apply_change("", Pos(10, 0), Pos(15, 0))  # a whole function gone above
    near = document.syntax_near(document.offset_at(Pos(96, 4)))
    fresh = Document("file:///long.py", "python", document.text).tree
    for row in range(document.line_count):
        line = document.line(row)
        column = len(line) - len(line.lstrip())
        assert near.starts_statement(row, column) == syntax.starts_statement(fresh, row, column), row


def test_a_tall_region_in_an_outdated_tree_is_looked_up_in_a_fresh_one():
    document = Document("file:///long.py", "python", _long_module(10))
    _ = document.tree  # parse now
    pasted = _long_module(80)  # 400 lines the tree has not parsed: one tall gap between two functions
    document.apply_change(pasted, Pos(5, 0), Pos(5, 0))
    near = document.syntax_near(document.offset_at(Pos(5 + 200, 4)))
    assert near.region.last_row - near.region.first_row < 10
    assert not document._stale


SHAPES = '''"""A module with the shapes completions meet."""

import os


@dataclass
class Store:
    """Keeps items."""

    limit = 10  # a class attribute

    def add(self, item):
        if item is None:
            raise ValueError("no item")
        elif len(self.items) > self.limit:
            return False
        else:
            self.items.append(item)
        # a comment in the body

        try:
            self.save()
        except OSError:
            pass
        return True

    @property
    def size(self):
        return len(self.items)


def helper(path):
    text = """a string
that spans lines"""
    with open(path) as handle:
        for line in handle:
            yield (line,
                   text)
'''

EVERY_KIND_OF_CANDIDATE = [
    *CANDIDATES,
    "foo(",
    ")",
    "]",
    "):",
    "(a, b)",
    '"""',
    "pass",
    "return a + b",
    "else:",
    "except E:",
    "@dec",
    "# note",
    "\n",
    "\nz = 3",
    "\n    y = 2",
    "\n        deep = 1",
    "x = [1,\n 2]",
    "\n    def g(self):\n        pass",
]


def test_the_local_check_never_accepts_what_the_whole_file_check_rejects_anywhere_in_a_module():
    """Every line start, indentation and line end of a module, every candidate the pipeline hands to the check
    (block_end has already cut lines that leave the block the completion started in): the local check may be
    stricter (it does not see the statement a continuation like ``else:`` belongs to when the cursor is in the
    next one), never more lenient, and it agrees almost everywhere."""
    document = Document("file:///shapes.py", "python", SHAPES)
    verdicts = []
    for row in range(document.line_count):
        line = document.line(row)
        for column in sorted({0, len(line) - len(line.lstrip()), len(line)}):
            offset = document.offset_at(Pos(row, column))
            near = document.syntax_near(offset)
            context = FilterContext(document.text[:offset], document.text[offset:], "python", multiline=True)
            for inserted in EVERY_KIND_OF_CANDIDATE:
                if block_end(inserted, context) != inserted:
                    continue
                verdict = (near.insertion_adds_errors(inserted), _whole_file_verdict(document, offset, inserted))
                assert verdict != (False, True), (row, column, inserted)
                verdicts.append(verdict)
    assert sum(local == whole for local, whole in verdicts) / len(verdicts) > 0.99
