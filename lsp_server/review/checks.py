"""Deterministic checks that need no model, so a review is useful with any model, the small default included:
syntax errors the diff introduces (tree-sitter, before vs after), conflict markers left in, files that
became non-UTF-8, and source files that became binary."""

from __future__ import annotations

import re

from lsp_server import syntax
from lsp_server.review.diff import FileChange, decode_text, has_undecodable
from lsp_server.review.findings import Finding

SYNTAX_RULE = "mimo/syntax-error"
CONFLICT_RULE = "mimo/conflict-marker"
ENCODING_RULE = "mimo/non-utf8"
BINARY_RULE = "mimo/binary-source"
BINARY_SNIFF = 8000  # git's rule: a NUL byte in the first 8000 bytes makes a file binary
CHECK_RULES: dict[str, str] = {
    BINARY_RULE: "A source file holds NUL bytes: it is binary now, and compilers and interpreters reject it.",
    SYNTAX_RULE: "The change introduces a syntax error (tree-sitter parse of the file before and after).",
    CONFLICT_RULE: "A merge conflict marker was committed.",
    ENCODING_RULE: "The file is no longer valid UTF-8.",
}
_CONFLICT = re.compile(r"^(<{7} |<{7}$|={7}$|>{7} |>{7}$|\|{7} |\|{7}$)")


def check_file(change: FileChange, before: bytes | None, after: bytes | None) -> list[Finding]:
    """All deterministic findings for one changed file; ``before``/``after`` are None when unknown or absent."""
    if change.status == "deleted":
        return []
    if change.is_binary:
        return binary_source(change, after)
    findings = conflict_markers(change) + encoding(change, before, after)
    after_text = decode_text(after)
    if after_text is not None:
        findings += introduced_syntax_errors(change, decode_text(before), after_text)
    return findings


def conflict_markers(change: FileChange) -> list[Finding]:
    return [
        _line_finding(
            change.path,
            line.new_line,
            line.text,
            "error",
            CONFLICT_RULE,
            f"merge conflict marker {line.text[:7]!r} left in the file",
        )  # fmt: skip
        for hunk in change.hunks
        for line in hunk.lines
        if line.kind == "+" and line.new_line is not None and _CONFLICT.match(line.text)
    ]


def encoding(change: FileChange, before: bytes | None, after: bytes | None) -> list[Finding]:
    """One finding on the first added line holding bytes that are not UTF-8, when the file was UTF-8 before
    (or is new). Works from the diff's lines, so it also runs on a diff file with no contents at hand."""
    if before is not None and decode_text(before) is None:
        return []  # it was not UTF-8 before either: not this change's doing
    if after is not None and decode_text(after) is not None:
        return []
    for hunk in change.hunks:
        for line in hunk.lines:
            if line.kind == "+" and line.new_line is not None and has_undecodable(line.text):
                shown = line.text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                return [_line_finding(change.path, line.new_line, shown, "warning", ENCODING_RULE,
                                      "this line is not valid UTF-8; save the file as UTF-8")]  # fmt: skip
    return []


def binary_source(change: FileChange, after: bytes | None) -> list[Finding]:
    """A file in a language we parse whose new bytes hold a NUL: a source file overwritten with binary data.
    (git also calls files binary by attribute, e.g. `*.min.js -diff`; those hold no NUL and are not flagged.)"""
    language = syntax.language_for_path(change.path)
    if language is None or after is None or b"\0" not in after[:BINARY_SNIFF]:
        return []
    message = f"this {language} file holds NUL bytes (binary data): it no longer compiles or runs as source"
    return [_line_finding(change.path, 1, "", "error", BINARY_RULE, message)]


def introduced_syntax_errors(change: FileChange, before: str | None, after: str) -> list[Finding]:
    """Syntax problems the change adds: none when the file has no more problems than before; otherwise those on
    added lines (or, when the parser reports them elsewhere, the ones whose message is new)."""
    language = syntax.language_for_path(change.path)
    if language is None:
        return []
    after_issues = syntax.syntax_issues(syntax.parse(after, language))
    before_issues = syntax.syntax_issues(syntax.parse(before, language)) if before is not None else []
    if len(after_issues) <= len(before_issues):
        return []
    added = change.added_lines
    chosen = [i for i in after_issues if i.start_row + 1 in added]
    if not chosen:
        known = {i.message for i in before_issues}
        chosen = [i for i in after_issues if i.message not in known] or after_issues[:1]
    lines = after.split("\n")
    return [_issue_finding(change.path, issue, lines) for issue in chosen]


def _issue_finding(path: str, issue: syntax.SyntaxIssue, lines: list[str]) -> Finding:
    snippet = tuple(lines[issue.start_row : issue.end_row + 1]) or ("",)
    start_col = _byte_to_char(snippet[0], issue.start_col)
    end_col = _byte_to_char(snippet[-1], issue.end_col)
    if issue.start_row == issue.end_row and end_col <= start_col:
        end_col = None  # a MISSING node is zero-width: mark to the end of the line instead
    return Finding(path, issue.start_row + 1, issue.end_row + 1, "error", SYNTAX_RULE, issue.message,
                   start_column=start_col, end_column=end_col, source="check", snippet=snippet)  # fmt: skip


def _byte_to_char(line: str, byte_col: int) -> int:
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", "ignore"))


def _line_finding(path: str, line_no: int, text: str, severity, rule: str, message: str) -> Finding:
    return Finding(path, line_no, line_no, severity, rule, message, source="check", snippet=(text,))
