"""Syntax questions around a cursor without re-parsing the whole file: the region of complete statements around
it (``region_around``), where it sits in its file (``IndentFrame``, for Python) and the answers (``LocalSyntax``).

Positions are 0-based rows and UTF-8 byte columns, as tree-sitter reports them.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node, Point, Tree

from lsp_server.syntax import error_count, parse, python_compile_error, starts_statement, syntax_issues

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
    for depth, block in enumerate(blocks):  # noqa: B007  (depth is read after the loop)
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
    for depth, block in enumerate(blocks):  # noqa: B007  (depth is read after the loop)
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
