"""tree-sitter languages and the syntax questions every feature asks: parse, where are the errors, what scope
encloses a line, does an edit add errors. Shared by completion, fix-its and review. Completions ask theirs of
the few statements around the cursor (LocalSyntax), which costs a small fraction of a whole-file re-parse.

Positions are 0-based rows and UTF-8 byte columns, as tree-sitter reports them; callers convert to LSP's UTF-16.
"""

from __future__ import annotations

import ast
import importlib
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import PurePath

from tree_sitter import Language, Node, Parser, Point, Tree

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


def python_compile_error(text: str) -> SyntaxIssue | None:
    """CPython's own verdict (indentation included), without running anything; None when the text compiles."""
    try:
        with warnings.catch_warnings():  # SyntaxWarnings about code it accepts ("1if") would go to stderr
            warnings.simplefilter("ignore", SyntaxWarning)
            ast.parse(text)
    except SyntaxError as error:  # IndentationError is a SyntaxError
        row = max((error.lineno or 1) - 1, 0)
        return SyntaxIssue(row, 0, row, 0, f"{type(error).__name__}: {error.msg}")
    except ValueError as error:  # e.g. a NUL byte
        return SyntaxIssue(0, 0, 0, 0, f"cannot compile: {error}")
    return None


# Nodes whose children are statements: cutting the code just before one of them splits no statement.
BLOCK_TYPES = frozenset(
    {
        "module", "program", "source_file", "translation_unit", "chunk",  # roots
        "block", "compound_statement", "statement_block", "class_body", "interface_body", "enum_body",
        "declaration_list", "field_declaration_list", "switch_block",
    }
)  # fmt: skip

# Languages whose statements parse alone the same at any depth: tree-sitter-python accepts an indented module,
# so the statements of an inner block make a region. Elsewhere a lone class or function body is no valid
# file (methods, Go or Rust statements at the top level), so regions are made of top-level statements.
_NESTED_BLOCKS: dict[str, str] = {"python": "block"}


@dataclass(frozen=True)
class Region:
    """Whole lines holding complete sibling statements: they parse alone as they do in their file. For Python,
    the rows whose indentation frames them in their file come along (see IndentFrame)."""

    first_row: int
    last_row: int  # inclusive
    block_rows: tuple[int, ...] = ()  # a row of each indented block it lies in (the first), outermost first
    previous_rows: tuple[int, ...] = ()  # the statement before it in its block, then each block that one ends in
    following_rows: tuple[int, ...] = ()  # the first row of each level the file goes on at after it, in order

    @property
    def nested(self) -> bool:
        """Statements of an inner (indented) block, not top-level ones."""
        return bool(self.block_rows)


@dataclass(frozen=True)
class IndentFrame:
    """Python: the indentation levels around a region in its file, to compile the region in place. Lines may then
    dedent to the levels they could dedent to in the file and to no other, a block is empty only if it would be
    in the file, and the code after the region must still fit the indentation the region leaves. The clauses
    that follow an enclosing block (``except:`` after a ``try:`` body) are not reproduced."""

    blocks: tuple[str, ...] = ()  # the indentation of each block the region lies in, outermost first
    previous: tuple[str, ...] = ()  # of the statement before it, then of each block that statement ends in
    following: tuple[str, ...] = ()  # of each level the file goes on at after it, in order

    def around(self, text: str) -> str:
        headers = ("", *self.blocks)[: len(self.blocks)]  # block k's header is indented as block k - 1
        head = [f"{indent}with _:\n" for indent in (*headers, *self.previous[:-1])]  # `with`: no else/except
        head += [f"{indent}pass\n" for indent in self.previous[-1:]]
        return "".join(head) + text + "\n" + "".join(f"{indent}pass\n" for indent in self.following)


def region_around(tree: Tree, point: Point, language: str) -> Region:
    """The statements around ``point`` in ``tree``: the one holding it, or the two either side of it, in the
    innermost block that can be parsed alone (``_NESTED_BLOCKS``, else the top level). A statement with a syntax
    error widens the region to the next block out, as error recovery need not stop at its edges."""
    block_type = _NESTED_BLOCKS.get(language)
    blocks = _enclosing_blocks(tree, point, block_type)
    for depth, block in enumerate(blocks):
        if block.child_count == 0:
            continue
        before, after = _children_around(block, point)
        if block == blocks[-1] or not (before.has_error or after.has_error):
            break
    else:
        return Region(0, max(tree.root_node.end_point.row, point.row))
    first_row = min(before.start_point.row, point.row)
    last_row = max(after.end_point.row, before.end_point.row, point.row)
    block_rows = tuple(b.start_point.row for b in reversed(blocks[depth:-1]))
    if block_type is None:
        return Region(first_row, last_row, block_rows)
    previous = _previous_rows(before, block_type)
    return Region(first_row, last_row, block_rows, previous, _following_rows(blocks[depth:], last_row))


def _previous_rows(statement: Node, block_type: str) -> tuple[int, ...]:
    """The row of the statement before ``statement`` in its block, then the first row of each indented block it
    ends in, outermost first; () when ``statement`` comes first."""
    previous = _statement_before(statement)
    if previous is None:
        return ()
    rows, node = [previous.start_point.row], previous
    while node.child_count:
        node = node.child(node.child_count - 1)
        if _is_indented_block(node, block_type):
            rows.append(node.start_point.row)
    return tuple(rows)


def _following_rows(blocks: list[Node], last_row: int) -> tuple[int, ...]:
    """For each of ``blocks`` (innermost first) that has statements after ``last_row``, the first one's row."""
    rows = []
    for block in blocks:
        if block.child_count == 0:
            continue
        _, after = _children_around(block, Point(last_row + 1, 0))
        if after.start_point.row <= last_row:  # the statement the region ends in, or the last one before it
            after = _statement_after(after)
        if after is not None and not after.is_extra and after.start_point.row > last_row:
            rows.append(after.start_point.row)
    return tuple(rows)


def _statement_before(node: Node) -> Node | None:
    sibling = node.prev_sibling
    while sibling is not None and sibling.is_extra:
        sibling = sibling.prev_sibling
    return sibling


def _statement_after(node: Node) -> Node | None:
    sibling = node.next_sibling
    while sibling is not None and sibling.is_extra:
        sibling = sibling.next_sibling
    return sibling


def _enclosing_blocks(tree: Tree, point: Point, block_type: str | None) -> list[Node]:
    """The blocks around ``point`` whose statements may be parsed alone, innermost first; the root last."""
    root = tree.root_node
    if block_type is None:
        return [root]
    node = root.descendant_for_point_range(point, point)
    if node is not None and (node.type == block_type or node == root):
        node = _block_continued_at(node, point, block_type) or node
    blocks: list[Node] = []
    while node is not None and node != root:
        if _is_indented_block(node, block_type):
            blocks.append(node)
        node = node.parent
    return [*blocks, root]


def _block_continued_at(block: Node, point: Point, block_type: str) -> Node | None:
    """On an indented line after one of ``block``'s statements (in the blank lines no node covers), the block
    that the cursor continues: the innermost one ending with that statement that its indentation reaches, as
    Python code belongs where its indentation puts it. None when the cursor is not after a statement."""
    if block.child_count == 0:
        return None
    before, _ = _children_around(block, point)
    if not (before.end_point < point and before.end_point.row < point.row):
        return None
    continued, node = None, before
    while node.child_count:
        node = node.child(node.child_count - 1)
        if _is_indented_block(node, block_type) and node.start_point.column <= point.column:
            continued = node
    return continued


def _is_indented_block(node: Node, block_type: str) -> bool:
    """A block of statements on lines of their own: not a body on its header's line (``if x: y``)."""
    parent = node.parent
    return node.type == block_type and parent is not None and node.start_point.row > parent.start_point.row


def _children_around(block: Node, point: Point) -> tuple[Node, Node]:
    """The statement holding ``point``, twice, or the two either side of it. Comments do not count: what a line
    means can depend on the statement after them (a decorator's function) or before them (its indentation)."""
    count = block.child_count
    low, high = 0, count  # binary search for the first child ending at or after point
    while low < high:  # (Node.first_child_for_byte crashes tree-sitter 0.26 when no child matches)
        middle = (low + high) // 2
        if block.child(middle).end_point < point:
            low = middle + 1
        else:
            high = middle
    after = block.child(min(low, count - 1))
    before = block.child(low - 1) if low > 0 and after.start_point > point else after
    if before.is_extra:
        before = _statement_before(before) or before
    if after.is_extra:
        after = _statement_after(after) or after
    return before, after


class LocalSyntax:
    """Syntax questions around a cursor, answered without re-parsing the whole file.

    tree-sitter's incremental re-parse still costs time in proportion to the statements of the file (it
    rebuilds the sibling lists along the edit: about 3 ms for 5,000 lines, on every keystroke), so the region
    around the cursor (``region_around``, found in the file's last tree edited to the current text) is parsed
    alone, which is exact there. Rows outside the region are read from that edited tree: positions exact,
    syntax as of its last parse, which an edit elsewhere does not change."""

    def __init__(
        self, outline: Tree, region: Region, text: str, cursor: int, language: str, frame: IndentFrame | None = None
    ):
        self.outline = outline
        self.region = region
        self.text = text  # the region's lines, current text
        self.cursor = cursor  # the cursor's index in ``text``
        self.language = language
        self.frame = frame or IndentFrame()  # Python: where the region sits, for CPython's verdict
        self.tree = parse(text, language)
        self._errors = len(syntax_issues(self.tree))
        self._compiles: bool | None = None  # Python only, on demand

    def node_at(self, row: int, column: int) -> Node | None:
        """The smallest node at a file position (row, UTF-8 byte column), from the region's tree if it holds the
        row. Ask it about kinds and shapes only: its rows are relative to the tree it came from."""
        tree, row = self._tree_for(row)
        return tree.root_node.descendant_for_point_range((row, column), (row, column))

    def starts_statement(self, row: int, column: int) -> bool:
        """True when a statement of a block starts at this file position."""
        tree, row = self._tree_for(row)
        return starts_statement(tree, row, column)

    def insertion_adds_errors(self, inserted: str) -> bool:
        """Whether inserting text at the cursor adds syntax errors (for Python: or stops the code compiling)."""
        after = self.text[: self.cursor] + inserted + self.text[self.cursor :]
        if error_count(after, self.language) > self._errors:
            return True
        # Only code that compiled before can stop compiling; ``after`` first, as it usually compiles.
        return self.language == "python" and not self._compiles_in_place(after) and self._python_compiles()

    def _tree_for(self, row: int) -> tuple[Tree, int]:
        if self.region.first_row <= row <= self.region.last_row:
            return self.tree, row - self.region.first_row
        return self.outline, row

    def _python_compiles(self) -> bool:
        """Whether the region compiles as it is (once per region: each candidate is checked against it)."""
        if self._compiles is None:
            self._compiles = self._compiles_in_place(self.text)
        return self._compiles

    def _compiles_in_place(self, text: str) -> bool:
        return python_compile_error(self.frame.around(text)) is None


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
