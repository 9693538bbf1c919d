"""Deterministic checks: introduced syntax errors (tree-sitter), conflict markers, files that became non-UTF-8."""

from __future__ import annotations

from lsp_server.review.checks import CONFLICT_RULE, ENCODING_RULE, SYNTAX_RULE, check_file
from lsp_server.review.contents import file_contents
from lsp_server.review.sources import DiffSource, read_diff


def _check(repo, before: dict[str, str | bytes], after: dict[str, str | bytes]):
    for path, content in before.items():
        repo.write(path, content)
    repo.commit()
    for path, content in after.items():
        repo.write(path, content)
    diff = read_diff(DiffSource(), repo.root)
    return [f for change in diff.files for f in check_file(change, *file_contents(diff, change))]


def test_a_syntax_error_on_an_added_line_is_reported_with_its_column(repo):
    found = _check(repo, {"m.py": "def f():\n    return 1\n"}, {"m.py": "def f():\n    return (1\n\nx = [é for\n"})
    assert {f.rule_id for f in found} == {SYNTAX_RULE}
    assert all(f.severity == "error" and f.source == "check" for f in found)
    assert min(f.start_line for f in found) >= 2


def test_a_file_that_was_already_broken_is_not_blamed_on_the_change(repo):
    broken = "def f(:\n    pass\n"
    assert _check(repo, {"m.py": broken}, {"m.py": broken + "y = 2\n"}) == []


def test_valid_changes_and_unknown_languages_raise_nothing(repo):
    found = _check(
        repo,
        {"m.go": "package m\n", "notes.txt": "a\n"},
        {"m.go": "package m\n\nfunc F() int { return 1 }\n", "notes.txt": "a (b\n"},
    )
    assert found == []


def test_conflict_markers_on_added_lines(repo):
    conflicted = "a = 1\n<<<<<<< HEAD\nb = 2\n=======\nb = 3\n>>>>>>> feature\n"
    found = [f for f in _check(repo, {"c.txt": "a = 1\n"}, {"c.txt": conflicted}) if f.rule_id == CONFLICT_RULE]
    assert [f.start_line for f in found] == [2, 4, 6]


def test_a_line_of_equals_signs_that_is_not_seven_long_is_no_marker(repo):
    assert _check(repo, {"r.md": "Title\n"}, {"r.md": "Title\n========\n"}) == []


def test_a_file_that_became_latin1_is_flagged_once(repo):
    found = _check(repo, {"n.txt": "cafe\n"}, {"n.txt": "caf\xe9\nna\xefve\n".encode("latin-1")})
    assert [(f.rule_id, f.start_line) for f in found] == [(ENCODING_RULE, 1)]


def test_a_file_that_was_latin1_already_is_not_flagged(repo):
    assert _check(repo, {"n.txt": b"caf\xe9\n"}, {"n.txt": b"caf\xe9\nna\xefve\n"}) == []


def test_binary_and_deleted_files_are_skipped(repo):
    repo.write("gone.py", "x = 1\n")
    found = _check(repo, {"b.bin": b"\x00\x01"}, {"b.bin": b"\x00<<<<<<< x\n"})
    repo.git("rm", "-q", "gone.py")
    assert found == []
