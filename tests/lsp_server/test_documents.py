"""Documents: UTF-16 positions, incremental edits (text, line index and tree agree with a fresh parse)."""

from __future__ import annotations

import random

import pytest

from lsp_server import syntax
from lsp_server.documents import Document, DocumentStore, Pos, PositionError, UnknownDocument, utf16_len


def test_utf16_positions_round_trip_through_emoji_and_cjk():
    doc = Document("file:///t.py", "python", 'a = "😀中"\nb = 1\n')
    offset = doc.offset_at(Pos(0, 8))  # after the emoji (2 units) and the CJK character (1 unit)
    assert doc.text[offset] == '"'
    assert doc.position_at(offset) == Pos(0, 8)
    assert doc.text[doc.offset_at(Pos(0, 7))] == "中"
    assert utf16_len("😀中") == 3


def test_a_character_past_the_line_end_means_the_end_but_a_line_past_the_file_is_an_error():
    doc = Document("file:///t.py", "python", "ab\ncd\n")
    assert doc.offset_at(Pos(0, 99)) == 2
    with pytest.raises(PositionError, match="out of range"):
        doc.offset_at(Pos(7, 0))


def test_tree_points_map_back_to_utf16_positions():
    doc = Document("file:///t.py", "python", 'x = "😀" + (\n')
    (issue,) = syntax.syntax_issues(doc.tree)
    assert doc.position_of_point(issue.start_row, issue.start_col).character <= utf16_len('x = "😀" + (')


def test_random_incremental_edits_match_a_fresh_document():
    rng = random.Random(7)
    doc = Document("file:///t.py", "python", "def f(x):\n    return x\n\n\nclass A:\n    pass\n")
    pieces = ["\n", "    ", "y = (", ")", "😀", "中文\n", "def g():\n    return 1\n", ""]
    for _ in range(200):
        start = doc.position_at(rng.randrange(len(doc.text) + 1))
        end_offset = min(len(doc.text), doc.offset_at(start) + rng.randrange(4))
        doc.apply_change(rng.choice(pieces), start, doc.position_at(end_offset))
        if rng.random() < 0.3:
            fresh = Document("file:///t.py", "python", doc.text)
            assert [doc.offset_at_row(row) for row in range(doc.line_count)] == [
                fresh.offset_at_row(row) for row in range(fresh.line_count)
            ]
            assert str(doc.tree.root_node) == str(fresh.tree.root_node)


def test_store_reports_unknown_documents_by_uri():
    store = DocumentStore()
    store.open("file:///a.ts", "typescript", "let a = 1;\n", 1)
    assert store.get("file:///a.ts").language == "typescript"
    with pytest.raises(UnknownDocument, match="didOpen"):
        store.get("file:///b.ts")
