"""Careless and unusual input: odd file names, form feeds and lone carriage returns, source files turned binary,
garbage passed as a diff, --max-findings 0 against the gate, and quoted source that looks like markup."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from typer.testing import CliRunner

from lsp_server.review.diff import Skipped, parse_diff, unquote_path
from lsp_server.review.editor import review_document
from lsp_server.review.findings import Finding
from lsp_server.review.report import render
from lsp_server.review.runner import ReviewReport
from lsp_server.review.sources import DiffSource, read_diff
from mimo.cli import app

ODD_NAMES = ["new\nline.py", "tab\there.py", 'quote".py', "back\\slash.py", "p b/q.py", " leading.py", "-dash.py",
             "é ü 中.py", "sp ace.py"]  # fmt: skip


def _invoke(*args: str):
    return CliRunner().invoke(app, ["review", *args])


def _json(*args: str) -> dict:
    result = _invoke(*args, "--format", "json", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _syntax_paths(report: dict) -> set[str]:
    return {f["path"] for f in report["findings"] if f["rule_id"] == "mimo/syntax-error"}


@pytest.mark.parametrize("how", ["untracked", "staged", "modified"])
def test_odd_file_names_are_reviewed_under_their_true_names(repo, how):
    repo.write("keep.py", "x = 1\n")
    if how == "modified":
        for name in ODD_NAMES:
            repo.write(name, "x = 1\n")
    repo.commit()
    for name in ODD_NAMES:
        repo.write(name, "def f(:\n")
    if how == "staged":
        repo.git("add", "-A")
    report = _json(str(repo.root), "--checks-only", *(["--staged"] if how == "staged" else []))
    assert _syntax_paths(report) == set(ODD_NAMES)


def test_a_pure_rename_with_spaces_and_b_slash_keeps_both_names(repo):
    repo.write("p b/old name.txt", "".join(f"{i}\n" for i in range(30)))
    repo.commit()
    (repo.root / "p b" / "new b").mkdir()
    repo.git("mv", "p b/old name.txt", "p b/new b/name.txt")
    diff = read_diff(DiffSource(staged=True), repo.root)
    (change,) = diff.files
    assert (change.status, change.old_path, change.path) == ("renamed", "p b/old name.txt", "p b/new b/name.txt")


@pytest.mark.parametrize("quoted, name", [("new\\nline", "new\nline"), ('q\\"t', 'q"t'), ("caf\\303\\251", "café"),
                                          ("bad\\351", "bad\udce9"), ("a\\\\b", "a\\b")])  # fmt: skip
def test_git_quoted_names_are_unquoted(quoted, name):
    assert unquote_path(quoted) == name


SPECIAL = {"form-feed": "\f", "lone-cr": "\r", "vertical-tab": "\v", "nel": "\x85", "line-separator": "\u2028"}


@pytest.mark.parametrize("char", SPECIAL.values(), ids=SPECIAL.keys())
@pytest.mark.parametrize("source", ["worktree", "staged", "diff-file", "untracked"])
def test_form_feeds_and_lone_carriage_returns_do_not_break_the_diff(repo, tmp_path, char, source):
    before = "def f():\n    return 1\n"
    after = f"def f():\n    return 1\n# a{char}b\n\ndef g(:\n"  # line 5 holds the syntax error
    repo.write("keep.py", "k = 1\n")
    if source != "untracked":
        repo.write("m.py", before)
    repo.commit()
    repo.write("m.py", after)
    args = [str(repo.root), "--checks-only"]
    if source == "staged":
        repo.git("add", "m.py")
        args.append("--staged")
    elif source == "diff-file":
        patch = tmp_path / "change.diff"
        patch.write_bytes(repo.git_bytes("diff"))
        args += ["--diff", str(patch)]
    report = _json(*args)
    assert [(f["path"], f["start_line"]) for f in report["findings"]] == [("m.py", 5)]


async def test_the_editor_diff_splits_on_newlines_only(repo):
    path = repo.write("m.py", "def f():\n    return 1\n")
    repo.commit()
    review = await review_document(path, "def f():\n    return 1\f\n# a\rb\ndef g(:\n", None)
    assert [(d.code, d.range.start.line) for d in review.diagnostics] == [("mimo/syntax-error", 3)]


def test_a_source_file_turned_binary_is_an_error_and_other_binaries_are_skipped(repo):
    repo.write("m.py", "x = 1\n")
    repo.write("logo.png", b"\x89PNG\x00\x01")
    repo.write("app.min.js", "var a=1;\n")
    repo.write(".gitattributes", "*.min.js -diff\n")  # git calls it binary; it holds no NUL: not flagged
    repo.commit()
    repo.write("m.py", b"\x00\x01\x02garbage")
    repo.write("logo.png", b"\x89PNG\x00\x02")
    repo.write("app.min.js", "var a=2;\n")
    repo.write("new.py", b"\x7fELF\x00\x00")
    result = _invoke(str(repo.root), "--checks-only", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert {(f["path"], f["rule_id"]) for f in report["findings"]} == {
        ("m.py", "mimo/binary-source"), ("new.py", "mimo/binary-source")}  # fmt: skip
    assert {s["path"] for s in report["skipped"]} == {"logo.png", "app.min.js"}


@pytest.mark.parametrize(
    "content",
    [b"\x8f\x12\xff random bytes \x00\x01" * 50, b"this is not a diff\njust prose\n", os.urandom(4096)],
    ids=["bytes", "prose", "random"],
)
def test_a_diff_file_that_is_no_diff_is_a_usage_error(repo, tmp_path, content):
    repo.write("a.py", "x = 1\n")
    repo.commit()
    patch = tmp_path / "garbage.diff"
    patch.write_bytes(content)
    result = _invoke(str(repo.root), "--diff", str(patch), "--checks-only")
    assert result.exit_code == 2, result.output
    assert "garbage.diff" in result.stderr and "Traceback" not in result.output


def test_an_empty_diff_file_is_no_changes(repo, tmp_path):
    repo.write("a.py", "x = 1\n")
    repo.commit()
    patch = tmp_path / "empty.diff"
    patch.write_text("")
    assert _invoke(str(repo.root), "--diff", str(patch), "--checks-only").exit_code == 0


def test_max_findings_zero_hides_findings_but_not_from_the_gate(repo):
    repo.write("m.py", "x = 1\n")
    repo.commit()
    repo.write("m.py", "def f(:\n")
    result = _invoke(str(repo.root), "--checks-only", "--max-findings", "0", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["findings"] == [] and report["summary"]["left_out"] == 1
    assert _invoke(str(repo.root), "--checks-only", "--max-findings", "0", "--fail-on", "never").exit_code == 0


def test_quoted_source_is_never_rendered_as_emoji_or_markup():
    finding = Finding("a.py", 1, 1, "error", "mimo/syntax-error", "near :x: [bold]b[/bold]",
                      snippet=('s = ":x: :thumbs_up: [red]r[/red]"',))  # fmt: skip
    text = render("text", ReviewReport((finding,), None, files=1))
    assert ':x: :thumbs_up: [red]r[/red]"' in text and "near :x: [bold]b[/bold]" in text
    assert "❌" not in text and "👍" not in text


def test_the_terminal_console_shows_emoji_codes_as_written(monkeypatch, repo, capsys):
    import sys

    from lsp_server.review import cli

    repo.write("m.py", "x = 1\n")
    repo.commit()
    repo.write("m.py", 'x = ":x:"\ndef f(:\n')
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code = cli._run_and_print(cli.ReviewOptions(path=repo.root, use_model=False), "text", "never")
    assert code == 0 and "❌" not in capsys.readouterr().out


_ESCAPES = ("\x1b[2J", "\x1b]0;pwned\x07", "\r", "\x9b31m")  # clear screen, retitle, overprint, 8-bit CSI


def test_escape_sequences_in_changed_lines_never_reach_the_terminal(monkeypatch, repo, capsys):
    import sys

    from lsp_server.review import cli

    repo.write("m.py", "x = 1\n")
    repo.commit()
    repo.write("m.py", 'def f(: return "\x1b[2J\x1b]0;pwned\x07\r\x9b31m"\n')  # the syntax error quotes the line
    os.symlink("/dev/null", repo.root / "link\x1b[2J.py")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    cli._run_and_print(cli.ReviewOptions(path=repo.root, use_model=False), "text", "never")
    terminal = capsys.readouterr()
    assert "f(:" in terminal.out and "link" in terminal.out
    for code in _ESCAPES:
        assert code not in terminal.out, repr(code)
    assert "\\x1b[2J" in terminal.out  # shown, escaped
    cli._run_and_print(cli.ReviewOptions(path=repo.root, use_model=False), "json", "never")
    assert "link" in (stderr := capsys.readouterr().err) and "\x1b" not in stderr


def test_the_caret_stays_under_the_flagged_text_after_an_escaped_control_character():
    finding = Finding("a.py", 1, 1, "error", "mimo/syntax-error", "m", start_column=6, end_column=7,
                      snippet=("s = '\x1b' +",))  # fmt: skip
    text = render("text", ReviewReport((finding,), None, files=1))
    quoted, caret = [line.split("│", 1)[1] for line in text.splitlines() if "│" in line]
    assert quoted[caret.index("^")] == "'"  # the closing quote, after the four characters of \x1b


def test_parse_diff_keeps_a_crlf_diff_file_readable():
    text = "--- a/x.py\r\n+++ b/x.py\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n"
    (change,) = parse_diff(text)
    assert change.path == "x.py" and change.hunks[0].lines[1].text == "b"


def test_a_nested_repository_is_set_aside_as_such_not_refused(repo):
    repo.write("a.py", "x = 1\n")
    repo.commit()
    inner = repo.root / "vendor" / "lib"
    inner.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(inner)], check=True)
    (inner / "b.py").write_text("def broken(:\n")
    diff = read_diff(DiffSource(), repo.root)
    assert diff.files == ()
    assert diff.skipped == (Skipped("vendor/lib", "a nested git repository: review it on its own", refused=False),)


# Bidi controls: embeddings/overrides U+202A-U+202E and isolates U+2066-U+2069 ("Trojan Source"): a changed
# line shows in another order than it runs. The text and GitHub reports write each as its escape.
_BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]


def test_bidi_controls_in_changed_lines_and_names_are_escaped_in_the_text_report(monkeypatch, repo, capsys):
    import sys

    from lsp_server.review import cli

    repo.write("m.py", "x = 1\n")
    repo.commit()
    hidden = "".join(_BIDI)
    repo.write("m.py", f'def f(: return "admin{hidden}"  # \u202e\u2066 check\n')  # the syntax error quotes it
    os.symlink("/dev/null", repo.root / "evil\u202etxt.py")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    cli._run_and_print(cli.ReviewOptions(path=repo.root, use_model=False), "text", "never")
    terminal = capsys.readouterr()
    assert "f(:" in terminal.out and "evil" in terminal.out
    for char in _BIDI:
        assert char not in terminal.out and char not in terminal.err, f"U+{ord(char):04X}"
    assert "\\u202e" in terminal.out and "\\u2069" in terminal.out and "evil\\u202etxt.py" in terminal.out


def test_bidi_and_control_characters_are_escaped_in_github_annotations():
    snippet = 's = "\u202eadmin\u2066" +'
    finding = Finding("src/\u202ex.py", 1, 1, "error", "review/\u2067odd", "quoted \u202eadmin\u2069 \x1b[2J here",
                      start_column=4, end_column=5, snippet=(snippet,))  # fmt: skip
    skipped = Skipped("bin/\u202eexe.py", "binary file", refused=False)
    out = render("github", ReviewReport((finding,), None, files=1, skipped=(skipped,)))
    first, second = out.splitlines()
    assert first.endswith("::quoted \\u202eadmin\\u2069 \\x1b[2J here") and "title=review/\\u2067odd" in first
    assert first.startswith("::error file=src/\u202ex.py,")  # the file property names the file exactly
    assert "::not reviewed: bin/\\u202eexe.py: binary file" in second
    message_parts = [line.split("::")[2] for line in out.splitlines()]
    for char in [*_BIDI, "\x1b"]:
        assert not any(char in part for part in message_parts)
