"""Our own diagnostics: tree-sitter syntax errors and missing tokens, as LSP diagnostics (UTF-16 positions)."""

from __future__ import annotations

from lsprotocol import types as lsp

from lsp_server import syntax
from lsp_server.documents import Document

SOURCE = "mimo"
SYNTAX_CODE = "syntax"


def syntax_diagnostics(document: Document, limit: int = 50) -> list[lsp.Diagnostic]:
    if document.tree is None:
        return []
    found = []
    for issue in syntax.syntax_issues(document.tree, limit=limit):
        start = document.position_of_point(issue.start_row, issue.start_col)
        end = document.position_of_point(issue.end_row, issue.end_col)
        found.append(
            lsp.Diagnostic(
                range=lsp.Range(lsp.Position(start.line, start.character), lsp.Position(end.line, end.character)),
                message=issue.message,
                severity=lsp.DiagnosticSeverity.Error,
                source=SOURCE,
                code=SYNTAX_CODE,
            )
        )
    return found


def is_ours(diagnostic: lsp.Diagnostic) -> bool:
    return diagnostic.source == SOURCE and diagnostic.code == SYNTAX_CODE
