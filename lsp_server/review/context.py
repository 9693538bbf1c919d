"""Review units: a hunk (or a piece of a large one) with the context a reviewer needs: the enclosing function or
class from tree-sitter and the file's imports, kept within a token budget. Units are packed into chunks, one
model request each."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from lsp_server import syntax
from lsp_server.review.diff import DiffLine, FileChange, Hunk

TokenCounter = Callable[[str], int]

# Top-level node types that bring names into a file, per grammar family.
_IMPORT_TYPES = frozenset(
    {
        "import_statement", "import_from_statement", "future_import_statement",  # python, js / ts
        "import_declaration",  # go, java
        "use_declaration",  # rust
        "preproc_include",  # c, cpp
    }
)  # fmt: skip


def estimate_tokens(text: str) -> int:
    """A tokenizer-free upper-side estimate (code runs about 3-4 characters a token in BPE vocabularies)."""
    return len(text) // 3 + 1


@dataclass(frozen=True)
class ReviewUnit:
    path: str
    language: str | None
    lines: tuple[DiffLine, ...]
    scope: str = ""  # e.g. "function_definition parse (lines 10-42)"; empty at module level
    scope_text: str = ""  # the enclosing scope's source, or its first line when the whole would not fit
    imports: str = ""

    @property
    def added_lines(self) -> frozenset[int]:
        return frozenset(line.new_line for line in self.lines if line.kind == "+" and line.new_line is not None)

    @property
    def first_new_line(self) -> int:
        """The new-file line the unit starts at: findings are cached relative to it, so they survive line shifts."""
        return next((line.new_line for line in self.lines if line.new_line is not None), 1)

    def content_key(self, model: str, prompt_version: str) -> str:
        """A hash of what the reviewer sees, without absolute line numbers, so moved code hits the cache."""
        digest = hashlib.sha256()
        for part in (model, prompt_version, self.path, self.scope_text, self.imports):
            digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
        for line in self.lines:
            digest.update((line.kind + line.text).encode("utf-8", "surrogateescape") + b"\n")
        return digest.hexdigest()


def units_for_file(
    change: FileChange, after_text: str | None, budget: int, count: TokenCounter = estimate_tokens
) -> list[ReviewUnit]:
    """The file's hunks as review units, each within ``budget`` tokens; hunks without added lines are skipped."""
    if change.status == "deleted" or change.is_binary:
        return []
    language = syntax.language_for_path(change.path)
    tree = syntax.parse(after_text, language) if after_text is not None and language else None
    after_lines = after_text.split("\n") if after_text is not None else []  # tree-sitter's rows: "\n" only
    imports = _imports(tree, after_lines, budget // 8, count) if tree is not None else ""
    units = []
    for hunk in change.hunks:
        if not hunk.added_lines:
            continue
        scope, scope_text = _scope(tree, after_lines, hunk, budget // 4, count) if tree is not None else ("", "")
        room = max(budget - count(scope_text) - count(imports), budget // 4)
        for piece in _split(hunk.lines, room, count):
            if any(line.kind == "+" for line in piece):
                units.append(ReviewUnit(change.path, language, piece, scope, scope_text, imports))
    return units


def _imports(tree, lines: list[str], budget: int, count: TokenCounter) -> str:
    rows = []
    for node in tree.root_node.children:
        if node.type in _IMPORT_TYPES:
            rows.extend(range(node.start_point[0], node.end_point[0] + 1))
    text, used = [], 0
    for row in rows:
        used += count(lines[row]) if row < len(lines) else 0
        if used > budget:
            break
        text.append(lines[row])
    return "\n".join(text)


def _scope(tree, lines: list[str], hunk: Hunk, budget: int, count: TokenCounter) -> tuple[str, str]:
    first_added = hunk.added_lines[0]
    scope = syntax.enclosing_scope(tree, first_added - 1)
    if scope is None:
        return "", ""
    label = f"{scope.kind} {scope.name or ''} (lines {scope.start_row + 1}-{scope.end_row + 1})".replace("  ", " ")
    hunk_rows = {line.new_line - 1 for line in hunk.lines if line.new_line is not None}
    if all(row in hunk_rows for row in range(scope.start_row, scope.end_row + 1)):
        return label, ""  # the hunk already shows the whole scope
    body = "\n".join(lines[scope.start_row : scope.end_row + 1])
    if count(body) > budget:
        body = lines[scope.start_row] if scope.start_row < len(lines) else ""
    return label, body


def _split(lines: tuple[DiffLine, ...], budget: int, count: TokenCounter) -> list[tuple[DiffLine, ...]]:
    """Consecutive pieces of at most ``budget`` tokens (a single over-long line still makes its own piece)."""
    pieces: list[tuple[DiffLine, ...]] = []
    current: list[DiffLine] = []
    used = 0
    for line in lines:
        cost = count(line.text) + 2
        if current and used + cost > budget:
            pieces.append(tuple(current))
            current, used = [], 0
        current.append(line)
        used += cost
    if current:
        pieces.append(tuple(current))
    return pieces


def unit_cost(unit: ReviewUnit, count: TokenCounter = estimate_tokens) -> int:
    lines = sum(count(line.text) + 2 for line in unit.lines)
    return lines + count(unit.scope_text) + count(unit.imports) + count(unit.path) + 8


def pack_chunks(units: list[ReviewUnit], budget: int, count: TokenCounter = estimate_tokens) -> list[list[ReviewUnit]]:
    """Greedy packing in diff order: each chunk stays within ``budget`` (a unit over budget goes alone)."""
    chunks: list[list[ReviewUnit]] = []
    current: list[ReviewUnit] = []
    used = 0
    for unit in units:
        cost = unit_cost(unit, count)
        if current and used + cost > budget:
            chunks.append(current)
            current, used = [], 0
        current.append(unit)
        used += cost
    if current:
        chunks.append(current)
    return chunks
