"""The editor-facing review: an unsaved buffer against HEAD, as LSP diagnostics (UTF-16) and quick fixes."""

from __future__ import annotations

import json

from conftest import ScriptedServer
from lsprotocol import types as lsp

from engine.remote import RemoteEngine
from lsp_server.review.editor import buffer_diff, review_document

SAVED = 'def greet(name):\n    return "hi " + name\n'


def _suggest_fstring(messages):
    """A reviewer that flags line 2 and proposes a replacement for it."""
    fix = {
        "path": "greet.py",
        "start_line": 2,
        "end_line": 2,
        "severity": "note",
        "rule": "use-fstring",
        "message": "use an f-string",
        "replacement": '    return f"héllo 😀 {name}"',
    }
    return json.dumps({"findings": [fix]})


async def test_unsaved_buffer_is_reviewed_with_utf16_ranges_and_a_quick_fix(repo):
    path = repo.write("greet.py", SAVED)
    repo.commit()
    buffer = 'def greet(name):\n    return "héllo 😀 " + name\n'  # not saved: the file on disk is unchanged
    with ScriptedServer(_suggest_fstring) as server:
        engine = RemoteEngine(server.url)
        await engine.check()
        try:
            review = await review_document(path, buffer, engine)
        finally:
            await engine.aclose()
    assert review.model == "fake-reviewer"
    (diagnostic,) = review.diagnostics
    assert diagnostic.severity == lsp.DiagnosticSeverity.Information and diagnostic.code == "review/use-fstring"
    line = buffer.splitlines()[1]
    assert diagnostic.range.end == lsp.Position(1, len(line.encode("utf-16-le")) // 2)  # 😀 counts twice
    assert diagnostic.range.end.character == len(line) + 1
    (action,) = review.code_actions
    assert action.kind == lsp.CodeActionKind.QuickFix and action.diagnostics == [diagnostic]
    (edit,) = action.edit.changes[path.resolve().as_uri()]
    assert edit.new_text == '    return f"héllo 😀 {name}"' and edit.range.start == lsp.Position(1, 0)


async def test_checks_run_without_an_engine_on_the_buffer(repo):
    path = repo.write("greet.py", SAVED)
    repo.commit()
    review = await review_document(path, SAVED.replace("return", "return (", 1), None)
    assert review.model is None
    assert [d.code for d in review.diagnostics] == ["mimo/syntax-error"]
    assert review.diagnostics[0].range.start.line == 1 and review.code_actions == []


async def test_a_new_untracked_file_is_reviewed_whole(repo):
    repo.write("other.py", "x = 1\n")
    repo.commit()
    path = repo.root / "notes" / "new.txt"  # not on disk at all yet
    review = await review_document(path, "<<<<<<< HEAD\n", None)
    assert [(d.code, d.range.start.line) for d in review.diagnostics] == [("mimo/conflict-marker", 0)]


async def test_no_changes_and_no_repository_give_notes(repo, tmp_path):
    path = repo.write("greet.py", SAVED)
    repo.commit()
    unchanged = await review_document(path, SAVED, None)
    assert unchanged.diagnostics == [] and "no uncommitted changes" in unchanged.notes[0]
    loose = tmp_path / "loose.py"
    loose.write_text("x = 1\n")
    assert "not in a git repository" in (await review_document(loose, "x = 2\n", None)).notes[0]


def test_buffer_diff_matches_the_changed_lines():
    text = buffer_diff("a.py", b"a\nb\nc\n", "a\nB\nc\nd\n")
    assert "-b\n+B\n" in text and "+d\n" in text and text.startswith("diff --git a/a.py b/a.py\n")
