"""Our own diagnostics: syntax errors as LSP diagnostics (UTF-16 positions). tree-sitter's ERROR and MISSING nodes
in every language; for Python CPython's compiler decides (``syntax.document_issues``): it sees indentation errors
and 'return' outside a function, which tree-sitter accepts."""

from __future__ import annotations

from lsprotocol import types as lsp

from lsp_server import syntax
from lsp_server.documents import Document

SOURCE = "mimo"
SYNTAX_CODE = "syntax"

# Editors ask for code actions on every cursor move, and each asks for these: the last answer per document is
# kept until its text changes (compared by identity: every edit makes a new string).
_CACHE: dict[str, tuple[str, int, list[lsp.Diagnostic]]] = {}
_CACHE_LIMIT = 64


def syntax_diagnostics(document: Document, limit: int = 50) -> list[lsp.Diagnostic]:
    tree = document.tree
    if tree is None or document.language is None:
        return []
    cached = _CACHE.get(document.uri)
    if cached is not None and cached[0] is document.text and cached[1] == limit:
        return list(cached[2])
    found = [
        _diagnostic(document, issue) for issue in syntax.document_issues(document.text, tree, document.language, limit)
    ]
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[document.uri] = (document.text, limit, found)
    return list(found)


def _diagnostic(document: Document, issue: syntax.SyntaxIssue) -> lsp.Diagnostic:
    start = document.position_of_point(issue.start_row, issue.start_col)
    end = document.position_of_point(issue.end_row, issue.end_col)
    return lsp.Diagnostic(
        range=lsp.Range(lsp.Position(start.line, start.character), lsp.Position(end.line, end.character)),
        message=issue.message,
        severity=lsp.DiagnosticSeverity.Error,
        source=SOURCE,
        code=SYNTAX_CODE,
    )


def is_ours(diagnostic: lsp.Diagnostic) -> bool:
    return diagnostic.source == SOURCE and diagnostic.code == SYNTAX_CODE
