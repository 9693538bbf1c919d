"""Which brackets are code: those outside strings, comments and regex literals (`banner = ']'` closes nothing).

For the languages we parse, tree-sitter's tokens say where the text is: the statements around the cursor
(LocalSyntax's region, else the whole document) are parsed with the completion in place, so a cursor inside a
docstring or a multi-line raw string is read as the file reads it. For other languages a small lexer per
language family (comment markers and quotes, by the editor's language id) does the same roughly, line by line,
as tree-sitter has no grammar to offer and the standard library tokenizes only Python.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from tree_sitter import Node

from lsp_server.postprocess.base import FilterContext
from lsp_server.syntax import parser_for

BRACKETS = re.compile(r"[()\[\]{}]")
_BRACKET_BYTES = re.compile(rb"[()\[\]{}]")
WINDOW = 4000  # how far before the cursor open brackets are looked for (the statement at the cursor, roughly)

# tree-sitter node types whose text is no code, in our grammars (syntax._GRAMMARS). A string's interpolations
# (f"{x[0]}", `${a}`) count as text too: their brackets are balanced inside them.
_TEXT_NODES = frozenset({
    "comment", "line_comment", "block_comment", "html_comment",
    "string", "string_literal", "raw_string_literal", "template_string", "concatenated_string",
    "interpreted_string_literal", "rune_literal", "char_literal", "character_literal", "system_lib_string",
    "regex", "string_content", "string_fragment", "raw_string_literal_content", "escape_sequence",
})  # fmt: skip


@dataclass(frozen=True)
class CodeBrackets:
    """The code brackets around a completion: before the cursor, and in the completion itself."""

    before: tuple[str, ...]  # the code brackets before the cursor (within WINDOW), in order
    inside: tuple[tuple[int, str], ...]  # the completion's code brackets: (index in the completion, bracket)
    text_spans: tuple[tuple[int, int], ...]  # the completion's string and comment spans, [start, end) indices

    def in_text(self, index: int) -> bool:
        """Whether the completion's character at ``index`` is in a string or comment."""
        at = bisect_right(self.text_spans, (index, float("inf"))) - 1
        return at >= 0 and self.text_spans[at][0] <= index < self.text_spans[at][1]


def code_brackets(completion: str, context: FilterContext) -> CodeBrackets:
    if context.syntax is not None:
        syntax = context.syntax
        head, tail = syntax.text[: syntax.cursor], syntax.text[syntax.cursor :]
        return _parsed(head, completion, tail, syntax.language)
    if context.language is not None:
        return _parsed(context.prefix, completion, context.suffix, context.language)
    return _lexed(_line_window(context.prefix), completion, family(context.language_id))


def _parsed(head: str, completion: str, tail: str, language: str) -> CodeBrackets:
    """Brackets and text spans from tree-sitter's parse of ``head + completion + tail``, in bytes, then turned
    into the completion's character indices."""
    encoded = [part.encode("utf-8", "surrogatepass") for part in (head, completion, tail)]
    start, end = len(encoded[0]), len(encoded[0]) + len(encoded[1])
    source = b"".join(encoded)
    low = max(0, start - WINDOW)
    spans = _text_nodes(parser_for(language).parse(source).root_node, source, low, end, family(language))
    found = [(m.start(), m[0].decode()) for m in _BRACKET_BYTES.finditer(source, low, end)]
    code = [(at, bracket) for at, bracket in found if not _inside(spans, at)]
    index = _CharIndex(encoded[1])
    inside = tuple((index(at - start), bracket) for at, bracket in code if at >= start)
    text_spans = tuple(
        (index(max(s, start) - start), index(min(e, end) - start)) for s, e in spans if e > start and s < end
    )
    return CodeBrackets(tuple(bracket for at, bracket in code if at < start), inside, text_spans)


def _text_nodes(root: Node, source: bytes, low: int, high: int, rules: Family) -> list[tuple[int, int]]:
    """The byte spans of the string, comment and regex nodes overlapping [low, high), in document order. Only
    the nodes over that range are visited (a stack, not recursion: trees of deeply nested code are deep).

    Inside an ERROR node the grammar's tokens say little (an unterminated string is a lone `string_start`, or
    nothing at all), so that part is read by the language family's lexer instead."""
    spans: list[tuple[int, int]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in _TEXT_NODES and node is not root:
            spans.append((node.start_byte, node.end_byte))
            continue
        if node.type == "ERROR":
            spans += _lexed_bytes(source, max(node.start_byte, low), min(node.end_byte, high), node.start_byte, rules)
            continue
        stack.extend(child for child in reversed(node.children) if child.end_byte > low and child.start_byte < high)
    return spans


def _lexed_bytes(source: bytes, low: int, high: int, node_start: int, rules: Family) -> list[tuple[int, int]]:
    """The lexer's text spans over source[low:high], as byte spans; begun at a line's start when the node
    started before ``low`` (a line's start is where the rough lexer may begin, and a character boundary)."""
    if low > node_start:
        low = source.find(b"\n", low, high) + 1 or high
    encoded = source[low:high]
    spans = text_spans(encoded.decode("utf-8", "surrogatepass"), rules)
    if encoded.isascii():
        return [(low + s, low + e) for s, e in spans]
    starts = [at for at, byte in enumerate(encoded) if byte & 0xC0 != 0x80] + [len(encoded)]  # char -> byte
    return [(low + starts[s], low + starts[e]) for s, e in spans]


def _inside(spans: list[tuple[int, int]], at: int) -> bool:
    index = bisect_right(spans, (at, float("inf"))) - 1
    return index >= 0 and spans[index][0] <= at < spans[index][1]


class _CharIndex:
    """A byte offset in UTF-8 text -> the character index there (the identity for ASCII, the usual case).

    Otherwise the characters' byte offsets are listed once and searched: decoding the bytes up to each offset
    would cost the text's length per bracket, quadratic on a long completion full of brackets."""

    def __init__(self, encoded: bytes):
        self.starts: list[int] | None = None
        if not encoded.isascii():  # a UTF-8 character starts at every byte that is not a continuation byte
            self.starts = [at for at, byte in enumerate(encoded) if byte & 0xC0 != 0x80]

    def __call__(self, offset: int) -> int:
        return offset if self.starts is None else bisect_left(self.starts, offset)


# ---- languages without a grammar: a lexer per family --------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """How a family of languages writes comments and strings (rough: enough to find the code's brackets)."""

    line_comments: tuple[str, ...] = ()  # regular expressions that start a comment running to the line's end
    block_comments: tuple[tuple[str, str], ...] = ()  # (opener, closer), literal text
    quotes: str = "\"'`"  # quote characters; a string ends at its quote or the line's end, `\` escapes


_HASH = r"(?<!\S)#"  # `#` starts a comment only after a space or at a line's start: `${#arr[@]}` is shell code
_C_COMMENTS = (("/*", "*/"),)
_FAMILIES: dict[str, Family] = {
    **dict.fromkeys(
        (
            "python",
            "ruby",
            "shellscript",
            "sh",
            "bash",
            "zsh",
            "fish",
            "perl",
            "r",
            "yaml",
            "toml",
            "makefile",
            "dockerfile",
            "powershell",
            "coffeescript",
            "elixir",
            "julia",
            "nim",
            "crystal",
            "tcl",
            "cmake",
            "graphql",
        ),
        Family((_HASH,)),
    ),
    **dict.fromkeys(
        (
            "c",
            "cpp",
            "java",
            "javascript",
            "javascriptreact",
            "typescript",
            "typescriptreact",
            "go",
            "rust",
            "csharp",
            "kotlin",
            "swift",
            "scala",
            "dart",
            "groovy",
            "objective-c",
            "objective-cpp",
            "zig",
            "solidity",
            "proto",
            "jsonc",
            "scss",
            "less",
            "glsl",
            "hlsl",
        ),
        Family(("//",), _C_COMMENTS),
    ),
    "php": Family(("//", _HASH + r"(?!\[)"), _C_COMMENTS),  # `#[Attribute]` is code
    "css": Family((), _C_COMMENTS),
    **dict.fromkeys(("sql", "lua"), Family(("--",), _C_COMMENTS, "\"'")),
    **dict.fromkeys(("haskell", "elm", "purescript"), Family(("--",), (("{-", "-}"),), '"')),  # ' is a prime
    **dict.fromkeys(("ocaml", "fsharp"), Family((), (("(*", "*)"),), '"')),
    **dict.fromkeys(("clojure", "lisp", "scheme", "racket", "commonlisp"), Family((";",), (), '"')),  # '(a) quotes
    **dict.fromkeys(("latex", "tex", "erlang", "matlab"), Family(("%",), (), '"')),
    **dict.fromkeys(("html", "xml", "vue", "svelte"), Family((), (("<!--", "-->"),), "\"'")),
    **dict.fromkeys(("markdown", "plaintext"), Family((), (), "`")),  # prose: an apostrophe opens nothing
}
_DEFAULT = Family()  # an unknown language: strings only


def family(language_id: str) -> Family:
    return _FAMILIES.get(language_id.lower(), _DEFAULT)


def _line_window(prefix: str) -> str:
    """The last WINDOW characters before the cursor, from a line's start (where a rough lexer may begin)."""
    if len(prefix) <= WINDOW:
        return prefix
    window = prefix[-WINDOW:]
    return window[window.find("\n") + 1 :]


def _lexed(head: str, completion: str, rules: Family) -> CodeBrackets:
    text = head + completion
    spans = text_spans(text, rules)
    code = [(m.start(), m[0]) for m in BRACKETS.finditer(text) if not _inside(spans, m.start())]
    start = len(head)
    inside = tuple((at - start, bracket) for at, bracket in code if at >= start)
    clipped = tuple((max(s, start) - start, e - start) for s, e in spans if e > start)
    return CodeBrackets(tuple(bracket for at, bracket in code if at < start), inside, clipped)


def text_spans(text: str, rules: Family) -> list[tuple[int, int]]:
    """The [start, end) spans of ``text``'s comments and strings under a family's rules, in order."""
    openers = [*rules.line_comments, *(re.escape(opener) for opener, _ in rules.block_comments)]
    openers += [quote * 3 for quote in "\"'" if quote in rules.quotes]  # before the single quotes: first wins
    openers += [re.escape(quote) for quote in rules.quotes]
    if not openers:
        return []
    pattern = re.compile("|".join(f"(?:{opener})" for opener in openers), re.MULTILINE)
    closers = dict(rules.block_comments)
    spans: list[tuple[int, int]] = []
    at = 0
    while (found := pattern.search(text, at)) is not None:
        end = _span_end(text, found, closers)
        spans.append((found.start(), end))
        at = max(end, found.end())
    return spans


def _span_end(text: str, opener: re.Match[str], closers: dict[str, str]) -> int:
    token = opener[0]
    if token in closers or token in ('"""', "'''"):  # a block comment or a triple-quoted string: many lines
        closer = closers.get(token, token)
        end = text.find(closer, opener.end())
        return len(text) if end == -1 else end + len(closer)
    if len(token) == 1 and token in "\"'`":
        string = re.compile(rf"(?:\\.|[^{re.escape(token)}\\\n])*(?:{re.escape(token)})?", re.DOTALL)
        return string.match(text, opener.end()).end()  # type: ignore[union-attr]  (it matches the empty text)
    end = text.find("\n", opener.end())  # a line comment
    return len(text) if end == -1 else end
