"""tree-sitter languages and the syntax questions every feature asks: parse, where are the errors, what scope
encloses a line, does an edit add errors. Shared by completion, fix-its and review. Completions ask theirs of
the few statements around the cursor (``local_syntax.LocalSyntax``), at a small fraction of a whole-file re-parse.

Positions are 0-based rows and UTF-8 byte columns, as tree-sitter reports them; callers convert to LSP's UTF-16.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import PurePath

from tree_sitter import Language, Node, Parser, Tree

# language id -> (grammar module, function returning the language pointer)
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "typescriptreact": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "lua": ("tree_sitter_lua", "language"),
}

_EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "typescriptreact",
    ".go": "go", ".rs": "rust", ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".lua": "lua",
}  # fmt: skip

# Node types that count as a "scope" (function, class, method...) per language family.
_SCOPE_TYPES = frozenset(
    {
        "function_definition", "class_definition", "decorated_definition",  # python, c, cpp
        "function_declaration", "method_definition", "class_declaration", "arrow_function",  # js / ts
        "function_expression", "generator_function_declaration", "interface_declaration",
        "method_declaration", "type_declaration", "func_literal",  # go / java
        "function_item", "impl_item", "trait_item", "struct_item", "enum_item", "mod_item",  # rust
        "constructor_declaration", "enum_declaration", "record_declaration",  # java
        "class_specifier", "struct_specifier", "namespace_definition",  # cpp
        "local_function", "function_definition_statement", "local_function_definition_statement",  # lua
    }
)  # fmt: skip


@dataclass(frozen=True)
class SyntaxIssue:
    """A syntax error (an ERROR node) or a missing token (a MISSING node)."""

    start_row: int
    start_col: int
    end_row: int
    end_col: int
    message: str


@dataclass(frozen=True)
class Scope:
    kind: str  # the tree-sitter node type, e.g. "function_definition"
    name: str | None
    start_row: int
    end_row: int  # inclusive


def supported_languages() -> tuple[str, ...]:
    return tuple(_GRAMMARS)


def language_for_path(path: str) -> str | None:
    """The language id for a file name, or None when we have no grammar for it."""
    return _EXTENSIONS.get(PurePath(path).suffix.lower())


def normalize_language(language_id: str | None, path: str = "") -> str | None:
    """An editor's languageId (or the path's extension) mapped to a language we can parse."""
    aliases = {"typescriptreact": "typescriptreact", "javascriptreact": "javascript", "c++": "cpp"}
    if language_id:
        language_id = aliases.get(language_id, language_id)
        if language_id in _GRAMMARS:
            return language_id
    return language_for_path(path) if path else None


@cache
def ts_language(language: str) -> Language:
    if language not in _GRAMMARS:
        raise ValueError(f"no tree-sitter grammar for {language!r}; supported: {', '.join(_GRAMMARS)}")
    module_name, function_name = _GRAMMARS[language]
    return Language(getattr(importlib.import_module(module_name), function_name)())


def parser_for(language: str) -> Parser:
    return Parser(ts_language(language))


def parse(text: str, language: str, old_tree: Tree | None = None) -> Tree:
    """Parses text; with ``old_tree`` (already ``edit()``-ed), tree-sitter reuses unchanged subtrees."""
    source = text.encode("utf-8")
    parser = parser_for(language)
    return parser.parse(source, old_tree) if old_tree is not None else parser.parse(source)


def syntax_issues(tree: Tree, limit: int = 100) -> list[SyntaxIssue]:
    """ERROR and MISSING nodes, outermost first, in document order."""
    issues: list[SyntaxIssue] = []
    if not tree.root_node.has_error:
        return issues
    stack = [tree.root_node]
    while stack and len(issues) < limit:
        node = stack.pop()
        if node.is_error or node.is_missing:
            issues.append(_issue(node))
            continue  # an ERROR node's children repeat the same problem
        if node.has_error:
            stack.extend(reversed(node.children))
    return sorted(issues, key=lambda i: (i.start_row, i.start_col))


def _issue(node: Node) -> SyntaxIssue:
    if node.is_missing:
        message = f"syntax error: missing {node.type!r}"
    else:
        snippet = (node.text or b"").decode("utf-8", "replace").strip().splitlines()
        shown = snippet[0][:40] if snippet else ""
        message = f"syntax error near {shown!r}" if shown else "syntax error"
    (start_row, start_col), (end_row, end_col) = node.start_point, node.end_point
    return SyntaxIssue(start_row, start_col, end_row, end_col, message)


def error_count(text: str, language: str) -> int:
    return len(syntax_issues(parse(text, language)))


def adds_syntax_errors(before: str, after: str, language: str) -> bool:
    """True when ``after`` has more syntax problems than ``before`` (a completion or fix that breaks the file).

    For Python, code that stops compiling counts too: tree-sitter accepts bad indentation, CPython does not."""
    if error_count(after, language) > error_count(before, language):
        return True
    return language == "python" and python_compile_error(before) is None and python_compile_error(after) is not None


# CPython's verdict on a whole document costs about 4 ms per 1,000 lines; past this size only tree-sitter judges.
PYTHON_COMPILE_LIMIT = 500_000  # characters
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def python_compile_error(text: str, whole_program: bool = False) -> SyntaxIssue | None:
    """CPython's own verdict (indentation included), without running anything; None when the text compiles.

    With ``whole_program`` the compiler's own checks run too ('return' outside a function, 'await' outside an
    async function, ...): right for a whole file, wrong for a region lifted out of one."""
    error = _cpython_error(text, whole_program)
    if isinstance(error, SyntaxError):
        return _compile_issue(text, error)
    return None if error is None else SyntaxIssue(0, 0, 0, 0, error)


def python_error_point(text: str) -> tuple[int, int] | None:
    """Where CPython's first error is, exactly: (row, code point column), or None when the text compiles (or
    is too big to judge). The issue's range is widened for editors (never empty); a fix starts here instead."""
    error = _cpython_error(text, whole_program=True) if len(text) <= PYTHON_COMPILE_LIMIT else None
    if not isinstance(error, SyntaxError):
        return None
    row, line, column = _error_line(text, error)
    return row, column + _fstring_shift(line, column, error)


def _cpython_error(text: str, whole_program: bool) -> SyntaxError | str | None:
    """CPython's first error (positions in ``text``), a message when it could not judge, or None."""
    bom = text.startswith("\ufeff")  # a file's byte order mark: Python skips it when it reads the file
    try:
        with warnings.catch_warnings():  # SyntaxWarnings about code it accepts ("1if") would go to stderr
            warnings.simplefilter("ignore", SyntaxWarning)
            if whole_program:
                compile(text[bom:], "<document>", "exec", dont_inherit=True)
            else:
                ast.parse(text[bom:])
    except SyntaxError as error:  # IndentationError and TabError are SyntaxErrors
        if bom and error.lineno == 1:
            error.offset = (error.offset or 1) + 1
            error.end_offset = error.end_offset + 1 if error.end_offset and error.end_offset > 0 else error.end_offset
        return error
    except ValueError as error:  # a NUL byte, on older Pythons
        return f"cannot compile: {error}"
    except (RecursionError, MemoryError):
        return "cannot compile: nested too deeply for CPython"
    return None


def _compile_issue(text: str, error: SyntaxError) -> SyntaxIssue:
    """The error at CPython's line and column (1-based characters), as rows and UTF-8 byte columns; never an
    empty range, so editors show it."""
    row, line, column = _error_line(text, error)
    shift = _fstring_shift(line, column, error)
    start = min(column + shift, len(line))
    end = column + (error.end_offset or 0) - (error.offset or 1) if error.end_lineno == error.lineno else start
    end = min(max(end + shift, start), len(line))
    indent = len(line) - len(line.lstrip())
    if isinstance(error, IndentationError) and line.strip():  # the statement whose indentation is wrong
        start, end = indent, len(line.rstrip())
    elif start == end:  # CPython points between two characters: take the one after (or the last of the line)
        start, end = (start, start + 1) if start < len(line) else (max(start - 1, 0), start)
    columns = (len(line[:start].encode("utf-8")), len(line[:end].encode("utf-8")))
    message = f"{type(error).__name__}: {error.msg} (Python {PYTHON_VERSION})"
    return SyntaxIssue(row, columns[0], row, columns[1], message)


_CPYTHON_LINE_END = re.compile(r"\r\n|\r|\n")


def _error_line(text: str, error: SyntaxError) -> tuple[int, str, int]:
    """The row (lines end at "\n", as in tree-sitter and the documents), that row's text and the code point
    column in it of CPython's error. CPython also ends a line at a lone "\r", so its line numbers run ahead
    of the rows in a text holding one; the column it gives is counted from the start of its own line."""
    lineno = max(error.lineno or 1, 1)
    start = 0
    if "\r" in text:
        for number, match in enumerate(_CPYTHON_LINE_END.finditer(text), start=2):
            if number > lineno:
                break
            start = match.end()
    else:
        start = _nth_line_start(text, lineno)
    row = text.count("\n", 0, start)
    row_start = text.rfind("\n", 0, start) + 1
    row_end = text.find("\n", start)
    line = text[row_start : len(text) if row_end < 0 else row_end].removesuffix("\r")
    return row, line, min(start - row_start + max((error.offset or 1) - 1, 0), len(line))


def _nth_line_start(text: str, lineno: int) -> int:
    start = 0
    for _ in range(lineno - 1):
        found = text.find("\n", start)
        if found < 0:
            return len(text)
        start = found + 1
    return start


def _fstring_shift(line: str, column: int, error: SyntaxError) -> int:
    """Python 3.11 places an error inside an f-string's expression relative to that expression, written as
    "(expression)" in ``error.text``: the shift from there to the expression's place in the line."""
    quoted = (error.text or "").strip()
    if not (quoted.startswith("(") and quoted.endswith(")")):
        return 0
    found = line.find(quoted[1:-1])
    return found - 1 if found >= 0 and quoted[1:-1] and quoted not in line else 0


def document_issues(text: str, tree: Tree, language: str, limit: int = 100) -> list[SyntaxIssue]:
    """The syntax problems of a whole document: tree-sitter's, and for Python CPython's, which decides.

    tree-sitter accepts what CPython rejects (bad indentation, 'return' outside a function, Python 2's print)
    and, its grammar lagging the language, rejects some of what CPython accepts. So for Python: code that
    compiles has no syntax problems; otherwise CPython's first error (exact line and column) replaces the
    tree-sitter issues up to its row, and tree-sitter adds those after it, which CPython stops before."""
    issues = syntax_issues(tree, limit)
    if language != "python" or len(text) > PYTHON_COMPILE_LIMIT:
        return issues
    compiled = python_compile_error(text, whole_program=True)
    if compiled is None:
        return []
    return [compiled, *(issue for issue in issues if issue.start_row > compiled.end_row)][:limit]


# Nodes whose children are statements: cutting the code just before one of them splits no statement.
BLOCK_TYPES = frozenset(
    {
        "module", "program", "source_file", "translation_unit", "chunk",  # roots
        "block", "compound_statement", "statement_block", "class_body", "interface_body", "enum_body",
        "declaration_list", "field_declaration_list", "switch_block",
    }
)  # fmt: skip


def starts_statement(tree: Tree, row: int, column: int) -> bool:
    """True when a statement of a block starts at (row, byte column) of ``tree``."""
    node = tree.root_node.named_descendant_for_point_range((row, column), (row, column))
    while node is not None and node.parent is not None and tuple(node.parent.start_point) == (row, column):
        node = node.parent
    if node is None or tuple(node.start_point) != (row, column):
        return False
    return node.parent is None or node.parent.type in BLOCK_TYPES


def enclosing_scope(tree: Tree, row: int) -> Scope | None:
    """The innermost function/class-like node spanning ``row``, or None at module level."""
    node = tree.root_node.descendant_for_point_range((row, 0), (row, 0))
    while node is not None:
        if node.type in _SCOPE_TYPES and node.start_point[0] <= row <= node.end_point[0]:
            return Scope(node.type, _scope_name(node), node.start_point[0], node.end_point[0])
        node = node.parent
    return None


def _scope_name(node: Node) -> str | None:
    if node.type == "decorated_definition":
        definition = node.child_by_field_name("definition")
        return _scope_name(definition) if definition is not None else None
    name = node.child_by_field_name("name")
    if name is None:
        declarator = node.child_by_field_name("declarator")  # C / C++ functions
        while declarator is not None and declarator.child_by_field_name("declarator") is not None:
            declarator = declarator.child_by_field_name("declarator")
        name = declarator
    return name.text.decode("utf-8", "replace") if name is not None and name.text else None
