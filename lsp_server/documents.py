"""Open documents: text, version and an incrementally re-parsed tree-sitter tree per document, plus the local
syntax around a cursor that completions ask for without re-parsing the whole file.

LSP positions count UTF-16 code units; Python strings index code points; tree-sitter counts UTF-8 bytes.
The conversions live here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import unquote, urlparse

import numpy as np
from tree_sitter import Point, Tree

from lsp_server import local_syntax, syntax

# A local region taller than this, found in a tree that edits have outdated (e.g. a big paste not parsed
# yet), is looked up again in a fresh tree: parsing it alone would cost more than the incremental re-parse.
LOCAL_ROWS_BEFORE_REFRESH = 200
# Past this size a document is plain text (no tree, no syntax diagnostics or checks) until it is opened again:
# tree-sitter takes about a second per 2 MB on the server's one event loop (6.7 s for a 12 MB file).
MAX_SYNTAX_CHARS = 2_000_000


class PositionError(ValueError):
    """A position that does not exist in the document (the request is invalid)."""


class UnknownDocument(KeyError):
    def __str__(self) -> str:
        return f"document is not open: {self.args[0]} (send textDocument/didOpen first)"


@dataclass(frozen=True)
class Pos:
    """An LSP position: 0-based line and UTF-16 character."""

    line: int
    character: int


def uri_to_path(uri: str) -> str:
    """The file system path of a file: URI (other schemes are returned as they are)."""
    return unquote(urlparse(uri).path) if uri.startswith("file:") else uri


def utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def utf16_to_index(line_text: str, character: int) -> int:
    """The code point index in a line for a UTF-16 column; past the end means the end (as LSP specifies)."""
    units = 0
    for index, ch in enumerate(line_text):
        if units >= character:
            return index
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line_text)


def valid_unicode(text: str) -> str:
    """``text`` with lone surrogates (valid JSON, "\\ud800", but no character) replaced by U+FFFD, which takes
    one UTF-16 unit as they did, so positions stay right; the parsers cannot encode them."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _indentation(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


@dataclass
class Document:
    uri: str
    language: str | None  # a language we have a grammar for, else None
    text: str
    version: int = 0
    language_id: str = ""  # the editor's languageId ("ruby" has no grammar, so ``language`` is None)
    _tree: Tree | None = field(default=None, repr=False)
    _stale: bool = field(default=True, repr=False)  # edits applied to _tree that are not parsed yet
    # The offset of each line's first character. A numpy array: an edit shifts every later line, which in a
    # Python list costs a loop over the rest of the file on each keystroke.
    _line_starts: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64), repr=False)
    _edits: int = field(default=0, repr=False)  # changes so far: what cached answers are keyed by
    _near: tuple[tuple[int, int], local_syntax.LocalSyntax] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._reindex()

    @property
    def tree(self) -> Tree | None:
        """The syntax tree of the current text, parsed on demand: a burst of edits costs one
        (incremental) parse, when a feature first needs the tree."""
        return None if self.language is None else self._parse(self.language)

    def refresh_tree(self) -> None:
        """Parses now the edits the tree has not seen (completions read it without waiting for a parse)."""
        if self.language is not None:
            self._parse(self.language)

    def _parse(self, language: str) -> Tree:
        if self._stale or self._tree is None:
            self._tree = syntax.parse(self.text, language, old_tree=self._tree)
            self._stale = False
        return self._tree

    def syntax_near(self, offset: int) -> local_syntax.LocalSyntax | None:
        """The syntax around ``offset`` (see local_syntax.LocalSyntax): exact near it, at a fraction of the whole-file
        re-parse ``tree`` may need. The context builder, the mode decision and the syntax check of one
        completion share it: it is cached until the next edit."""
        if self.language is None:
            return None
        key = (self._edits, offset)
        if self._near is None or self._near[0] != key:
            self._near = key, self._local_syntax(offset, self.language)
        return self._near[1]

    def _local_syntax(self, offset: int, language: str) -> local_syntax.LocalSyntax:
        point = self.point_at(offset)
        outline = self._tree if self._tree is not None else self._parse(language)  # maybe edited since its parse
        region = local_syntax.region_around(outline, point, language)
        if region.last_row - region.first_row > LOCAL_ROWS_BEFORE_REFRESH and self._stale:
            outline = self._parse(language)
            region = local_syntax.region_around(outline, point, language)
        start = self.offset_at_row(region.first_row)
        end = self.offset_at_row(region.last_row + 1) if region.last_row + 1 < self.line_count else len(self.text)
        frame = self._indent_frame(region) if language == "python" else None
        return local_syntax.LocalSyntax(outline, region, self.text[start:end], offset - start, language, frame)

    def _indent_frame(self, region: local_syntax.Region) -> local_syntax.IndentFrame:
        """Python: the indentation of the rows that frame the region in the file (see local_syntax.IndentFrame)."""
        blocks, previous, following = region.block_rows, region.previous_rows, region.following_rows
        return local_syntax.IndentFrame(self._indents(blocks), self._indents(previous), self._indents(following))

    def _indents(self, rows: tuple[int, ...]) -> tuple[str, ...]:
        return tuple(_indentation(self.line(row)) for row in rows)

    @cached_property
    def path(self) -> str:
        return uri_to_path(self.uri)

    @property
    def line_count(self) -> int:
        return len(self._line_starts)

    def line(self, row: int) -> str:
        start = self.offset_at_row(row)
        end = self.offset_at_row(row + 1) - 1 if row + 1 < len(self._line_starts) else len(self.text)
        return self.text[start:end].removesuffix("\r")

    def offset_at_row(self, row: int) -> int:
        return int(self._line_starts[row])

    def offset_at(self, pos: Pos) -> int:
        """The code point offset of an LSP position; a line past the end is an error."""
        if pos.line < 0 or pos.character < 0:
            raise PositionError(f"negative position {pos.line}:{pos.character}")
        if pos.line >= self.line_count:
            if pos.line == self.line_count and pos.character == 0:
                return len(self.text)  # the position after a final newline
            raise PositionError(
                f"line {pos.line} is out of range: {self.uri} has {self.line_count} lines (0-based positions)"
            )
        return self.offset_at_row(pos.line) + utf16_to_index(self.line(pos.line), pos.character)

    def position_at(self, offset: int) -> Pos:
        row = self._row_of(offset)
        return Pos(row, utf16_len(self.text[self.offset_at_row(row) : offset]))

    def position_of_point(self, row: int, byte_column: int) -> Pos:
        """The LSP position of a tree-sitter point."""
        if row >= self.line_count:
            return self.position_at(len(self.text))
        head = self.line(row).encode("utf-8")[:byte_column].decode("utf-8", "replace")
        return Pos(row, utf16_len(head))

    def point_at(self, offset: int) -> Point:
        """tree-sitter's (row, UTF-8 byte column) for a code point offset."""
        row = self._row_of(offset)
        return Point(row, len(self.text[self.offset_at_row(row) : offset].encode("utf-8")))

    def apply_change(self, text: str, start: Pos | None = None, end: Pos | None = None) -> None:
        """Replaces the range (or the whole text when no range is given); the tree is edited to match and
        re-parsed incrementally when next needed."""
        self._edits += 1
        text = valid_unicode(text)
        if start is None or end is None:
            self.text = text
            self._reindex()
            self._tree, self._stale = None, True
            self._drop_syntax_if_huge()
            return
        begin, finish = self.offset_at(start), self.offset_at(end)
        if finish < begin:
            raise PositionError(f"range end {end} is before its start {start}")
        old_start_point, old_end_point = self.point_at(begin), self.point_at(finish)
        start_byte = self._byte_offset(begin)
        old_end_byte = start_byte + len(self.text[begin:finish].encode("utf-8"))
        self.text = self.text[:begin] + text + self.text[finish:]
        self._reindex_after(start.line, end.line, len(text) - (finish - begin))
        if self._tree is not None:
            self._tree.edit(
                start_byte=start_byte,
                old_end_byte=old_end_byte,
                new_end_byte=start_byte + len(text.encode("utf-8")),
                start_point=old_start_point,
                old_end_point=old_end_point,
                new_end_point=self.point_at(begin + len(text)),
            )
            self._stale = True
        self._drop_syntax_if_huge()

    def _drop_syntax_if_huge(self) -> None:
        if self.language is not None and len(self.text) > MAX_SYNTAX_CHARS:
            self.language, self._tree, self._near = None, None, None

    def _byte_offset(self, offset: int) -> int:
        """The UTF-8 byte offset of a code point offset; free for ASCII text (str.isascii is O(1))."""
        return offset if self.text.isascii() else len(self.text[:offset].encode("utf-8"))

    def _reindex(self) -> None:
        self._line_starts = np.array([0, *self._line_ends(0, len(self.text))], np.int64)

    def _reindex_after(self, first_row: int, last_row: int, delta: int) -> None:
        """Line starts after an edit of rows first..last: earlier ones stay, later ones shift by ``delta``."""
        starts = self._line_starts
        tail = starts[last_row + 1 :] + delta
        inside = self._line_ends(int(starts[first_row]), int(tail[0]) - 1 if len(tail) else len(self.text))
        self._line_starts = np.concatenate((starts[: first_row + 1], np.array(inside, np.int64), tail))

    def _line_ends(self, start: int, stop: int) -> list[int]:
        """The offsets just after each line break in text[start:stop]: where the following lines start."""
        ends, index = [], self.text.find("\n", start, stop)
        while index != -1:
            ends.append(index + 1)
            index = self.text.find("\n", index + 1, stop)
        return ends

    def _row_of(self, offset: int) -> int:
        return max(0, int(np.searchsorted(self._line_starts, offset, side="right")) - 1)


class DocumentStore:
    """The documents the editor has open, by URI."""

    def __init__(self) -> None:
        self._documents: dict[str, Document] = {}

    def open(self, uri: str, language_id: str | None, text: str, version: int) -> Document:
        language = syntax.normalize_language(language_id, uri) if len(text) <= MAX_SYNTAX_CHARS else None
        document = Document(uri, language, valid_unicode(text), version, language_id=language_id or "")
        self._documents[uri] = document
        return document

    def get(self, uri: str) -> Document:
        try:
            return self._documents[uri]
        except KeyError:
            raise UnknownDocument(uri) from None

    def close(self, uri: str) -> None:
        self._documents.pop(uri, None)

    def others(self, uri: str) -> list[Document]:
        return [doc for key, doc in self._documents.items() if key != uri]
