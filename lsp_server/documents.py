"""Open documents: text, version and an incrementally re-parsed tree-sitter tree per document.

LSP positions count UTF-16 code units; Python strings index code points; tree-sitter counts UTF-8 bytes.
The conversions live here and nowhere else.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from tree_sitter import Point, Tree

from lsp_server import syntax


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


@dataclass
class Document:
    uri: str
    language: str | None  # a language we have a grammar for, else None
    text: str
    version: int = 0
    _tree: Tree | None = field(default=None, repr=False)
    _stale: bool = field(default=True, repr=False)  # edits applied to _tree that are not parsed yet
    _line_starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._reindex()

    @property
    def tree(self) -> Tree | None:
        """The syntax tree of the current text, parsed on demand: a burst of edits costs one
        (incremental) parse, when a feature first needs the tree."""
        if self.language is None:
            return None
        if self._stale or self._tree is None:
            self._tree = syntax.parse(self.text, self.language, old_tree=self._tree)
            self._stale = False
        return self._tree

    @property
    def path(self) -> str:
        return uri_to_path(self.uri)

    @property
    def line_count(self) -> int:
        return len(self._line_starts)

    def line(self, row: int) -> str:
        start = self._line_starts[row]
        end = self._line_starts[row + 1] - 1 if row + 1 < len(self._line_starts) else len(self.text)
        return self.text[start:end].removesuffix("\r")

    def offset_at_row(self, row: int) -> int:
        return self._line_starts[row]

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
        return self._line_starts[pos.line] + utf16_to_index(self.line(pos.line), pos.character)

    def position_at(self, offset: int) -> Pos:
        row = self._row_of(offset)
        return Pos(row, utf16_len(self.text[self._line_starts[row] : offset]))

    def position_of_point(self, row: int, byte_column: int) -> Pos:
        """The LSP position of a tree-sitter point."""
        if row >= self.line_count:
            return self.position_at(len(self.text))
        head = self.line(row).encode("utf-8")[:byte_column].decode("utf-8", "replace")
        return Pos(row, utf16_len(head))

    def point_at(self, offset: int) -> Point:
        """tree-sitter's (row, UTF-8 byte column) for a code point offset."""
        row = self._row_of(offset)
        return Point(row, len(self.text[self._line_starts[row] : offset].encode("utf-8")))

    def apply_change(self, text: str, start: Pos | None = None, end: Pos | None = None) -> None:
        """Replaces the range (or the whole text when no range is given); the tree is edited to match and
        re-parsed incrementally when next needed."""
        if start is None or end is None:
            self.text = text
            self._reindex()
            self._tree, self._stale = None, True
            return
        begin, finish = self.offset_at(start), self.offset_at(end)
        if finish < begin:
            raise PositionError(f"range end {end} is before its start {start}")
        old_start_point, old_end_point = self.point_at(begin), self.point_at(finish)
        start_byte = len(self.text[:begin].encode("utf-8"))
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

    def _reindex(self) -> None:
        starts = [0]
        find = self.text.find
        index = find("\n")
        while index != -1:
            starts.append(index + 1)
            index = find("\n", index + 1)
        self._line_starts = starts

    def _reindex_after(self, first_row: int, last_row: int, delta: int) -> None:
        """Line starts after an edit of rows first..last: earlier ones stay, later ones shift by ``delta``."""
        kept = self._line_starts[: first_row + 1]
        inside, index = [], self.text.find("\n", kept[-1])
        tail = [start + delta for start in self._line_starts[last_row + 1 :]]
        limit = tail[0] if tail else len(self.text) + 1
        while index != -1 and index + 1 < limit:
            inside.append(index + 1)
            index = self.text.find("\n", index + 1)
        self._line_starts = kept + inside + tail

    def _row_of(self, offset: int) -> int:
        return max(0, bisect_right(self._line_starts, offset) - 1)


class DocumentStore:
    """The documents the editor has open, by URI."""

    def __init__(self) -> None:
        self._documents: dict[str, Document] = {}

    def open(self, uri: str, language_id: str | None, text: str, version: int) -> Document:
        language = syntax.normalize_language(language_id, uri)
        document = Document(uri=uri, language=language, text=text, version=version)
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
