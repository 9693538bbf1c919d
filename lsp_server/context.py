"""What the model sees: (document, cursor, other files, budget) -> FimParts. Pure functions, no I/O.

- The prefix and suffix fill most of the token budget and are cut at statement boundaries (a line that starts
  a statement in a block, per the tree), so the model never sees half a statement at the edge.
- The header names the file and its language, then adds the snippets of other open or imported files most
  similar to the code before the cursor (Jaccard similarity over sliding windows of lines, as Cody and
  Copilot do), written as comments so any FIM template can carry them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache, lru_cache

from engine.api import FimParts
from lsp_server.documents import Document
from lsp_server.local_syntax import LocalSyntax

# Code averages about 3.5 characters per BPE token; the budget is in tokens, cuts are in characters.
CHARS_PER_TOKEN = 3.5
SNIPPET_SHARE = 0.25  # of the budget, for cross-file snippets
PREFIX_SHARE = 0.75  # of what is left, for the prefix; the rest is the suffix
WINDOW_LINES = 20
WINDOW_STRIDE = 10
MIN_SIMILARITY = 0.15
MAX_SNIPPETS = 3
_BOUNDARY_SCAN_LINES = 60
IMPORT_SCAN_CHARS = 8000

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMENT = {"python": "#", "lua": "--"}


@dataclass(frozen=True)
class Source:
    """Another file the model may borrow from: an open document or a file the current one imports."""

    path: str
    text: str


@dataclass(frozen=True)
class Snippet:
    path: str
    text: str
    score: float


def comment_prefix(language: str | None) -> str:
    return _COMMENT.get(language or "", "//")


def build_fim(document: Document, offset: int, sources: list[Source], budget_tokens: int) -> FimParts:
    budget_chars = int(budget_tokens * CHARS_PER_TOKEN)
    prefix, suffix = document.text[:offset], document.text[offset:]
    snippets = best_snippets(prefix, sources, int(budget_chars * SNIPPET_SHARE), document.path)
    header = render_header(document, snippets)
    left = max(0, budget_chars - len(header))
    prefix_budget = int(left * PREFIX_SHARE)
    suffix_budget = left - prefix_budget + max(0, prefix_budget - len(prefix))  # unused prefix room goes to suffix
    prefix_budget += max(0, suffix_budget - len(suffix))
    near = document.syntax_near(offset)
    return FimParts(
        prefix=cut_prefix(document, prefix, prefix_budget, near),
        suffix=cut_suffix(document, offset, suffix, suffix_budget, near),
        header=header,
    )


def render_header(document: Document, snippets: list[Snippet]) -> str:
    mark = comment_prefix(document.language)
    lines = [f"{mark} Path: {_display_path(document.path)}", f"{mark} Language: {document.language or 'text'}"]
    for snippet in snippets:
        lines.append(f"{mark} Compare this snippet from {_display_path(snippet.path)}:")
        lines.extend(f"{mark} {line}".rstrip() for line in snippet.text.splitlines())
    return "\n".join(lines) + "\n"


@cache  # the server's working directory does not change, and relpath costs more than the rest of the header
def _display_path(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def is_boundary(document: Document, row: int, near: LocalSyntax | None) -> bool:
    """True when line ``row`` starts a statement of a block (so cutting just before it splits nothing)."""
    line = document.line(row)
    indent = len(line) - len(line.lstrip())
    if not line.strip() or near is None:
        return bool(line.strip()) and indent == 0
    return near.starts_statement(row, len(line[:indent].encode("utf-8")))


def cut_prefix(document: Document, prefix: str, budget: int, near: LocalSyntax | None = None) -> str:
    """The longest tail of ``prefix`` within budget that starts at a statement boundary (else a line start)."""
    if len(prefix) <= budget:
        return prefix
    earliest = len(prefix) - budget
    first_row = document.position_at(earliest).line + 1  # the first whole line inside the budget
    cursor_row = document.position_at(len(prefix)).line
    for row in range(first_row, min(cursor_row, first_row + _BOUNDARY_SCAN_LINES)):
        if is_boundary(document, row, near):
            return prefix[document.offset_at_row(row) :]
    return prefix[prefix.find("\n", earliest) + 1 :] if "\n" in prefix[earliest:] else prefix[earliest:]


def cut_suffix(document: Document, offset: int, suffix: str, budget: int, near: LocalSyntax | None = None) -> str:
    """The longest head of ``suffix`` within budget that ends just before a statement boundary."""
    if len(suffix) <= budget:
        return suffix
    last_row = document.position_at(offset + budget).line  # partly outside the budget
    cursor_row = document.position_at(offset).line
    for row in range(last_row, max(cursor_row, last_row - _BOUNDARY_SCAN_LINES), -1):
        if is_boundary(document, row, near):
            end = document.offset_at_row(row) - offset
            return suffix[:end]
    cut = suffix.rfind("\n", 0, budget)
    return suffix[: cut + 1] if cut > 0 else suffix[:budget]


def identifiers(text: str) -> frozenset[str]:
    return frozenset(_IDENTIFIER.findall(text))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def best_snippets(prefix: str, sources: list[Source], budget_chars: int, own_path: str) -> list[Snippet]:
    """The windows of other files most similar to the code just before the cursor, best first, within budget."""
    if budget_chars <= 0 or not sources:
        return []
    query = identifiers(_last_lines(prefix, WINDOW_LINES))
    if not query:
        return []
    candidates = [best_window(source, query) for source in sources if source.path != own_path]
    candidates = sorted((c for c in candidates if c and c.score >= MIN_SIMILARITY), key=lambda c: -c.score)
    chosen, used = [], 0
    for snippet in candidates[:MAX_SNIPPETS]:
        if used + len(snippet.text) <= budget_chars:
            chosen.append(snippet)
            used += len(snippet.text)
    return chosen


def _last_lines(text: str, count: int) -> str:
    start = len(text)
    for _ in range(count):
        start = text.rfind("\n", 0, start)
        if start == -1:
            return text
    return text[start + 1 :]


def best_window(source: Source, query: frozenset[str]) -> Snippet | None:
    lines = source.text.splitlines()
    best: Snippet | None = None
    for start in range(0, max(1, len(lines) - WINDOW_LINES + WINDOW_STRIDE), WINDOW_STRIDE):
        window = "\n".join(lines[start : start + WINDOW_LINES])
        score = jaccard(query, identifiers(window))
        if best is None or score > best.score:
            best = Snippet(source.path, window, score)
    return best


_PY_IMPORT = re.compile(r"^\s*(?:from\s+(\.*[\w.]*)\s+import|import\s+([\w.]+))", re.M)
_JS_IMPORT = re.compile(r"""(?:from\s+|require\(\s*|import\s+)['"](\.{1,2}/[^'"]+)['"]""")
_C_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
_JS_EXTENSIONS = ("", ".ts", ".tsx", ".js", ".jsx", ".mjs", "/index.ts", "/index.js")


def import_candidates(path: str, text: str, language: str | None) -> list[str]:
    """Files the document may import, as candidate paths (the caller keeps those that exist). Only the head
    of the file is read: imports live there, and scanning a whole big file on each keystroke costs."""
    return list(_imports_in_head(path, text[:IMPORT_SCAN_CHARS], language))


@lru_cache(maxsize=64)  # typing below the imports leaves the head as it was: no scan per keystroke
def _imports_in_head(path: str, head: str, language: str | None) -> tuple[str, ...]:
    folder = os.path.dirname(path)
    if language == "python":
        return tuple(c for m in _PY_IMPORT.finditer(head) for c in _python_module_paths(folder, m[1] or m[2]))
    if language in ("javascript", "typescript", "typescriptreact"):
        found = _JS_IMPORT.findall(head)
        return tuple(os.path.normpath(os.path.join(folder, rel)) + ext for rel in found for ext in _JS_EXTENSIONS)
    if language in ("c", "cpp"):
        return tuple(os.path.normpath(os.path.join(folder, rel)) for rel in _C_INCLUDE.findall(head))
    return ()


def _python_module_paths(folder: str, module: str) -> list[str]:
    dots = len(module) - len(module.lstrip("."))
    base = folder
    for _ in range(max(0, dots - 1)):
        base = os.path.dirname(base)
    relative = module.lstrip(".").replace(".", os.sep)
    if not relative:
        return []
    stem = os.path.join(base, relative)
    return [stem + ".py", os.path.join(stem, "__init__.py")]
