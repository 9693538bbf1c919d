"""What a fix-it may change: the checks a model's replacement for a diagnostic's lines must pass before it is
offered. Plain functions over text.

A fix must parse, and it must keep the code. Both were needed: a small model "fixed" a missing colon by turning
the whole function into comments, and an unclosed parenthesis by replacing four lines with C preprocessor
lines, which Python reads as comments. Both parsed and both made the error go away. So a replacement must:

- leave the document with no more syntax problems than before, none in the lines it wrote, none after them that
  was not there before (Python's compiler stops at its first error, so a fix that only moves the error down a
  line, by indenting its line anew, must not pass), and (for our own syntax diagnostics) without the problem
  it was asked to fix;
- keep the comments of the lines it replaces exactly: no code turned into comments, no comment added or lost;
- turn no code into string text (`print(x` -> `print("x")` parses too), though it may close a string left open;
- not repeat the code it fixes: a fix is the broken line with a small insertion or deletion, never the line with
  its own text repeated (an infill that writes the whole statement from the middle of the line made
  `values = [1, 2` into `values = values = [1, 2]`, a chained assignment, which parses). So no phrase of the
  lines (two or more tokens, one a word) is inserted again, and a syntax error's fix uses none of the lines'
  names again (it may add a missing one: `return a +` -> `return a + b`);
- stay close to the code it replaces: at most ``max(MIN_TOKEN_EDITS, TOKEN_EDIT_SHARE × tokens)`` tokens
  inserted or deleted; no word deleted, unless a close respelling takes its place (a typo fixed); at most one
  punctuation token deleted (an unmatched bracket). Tokens are the words and single punctuation characters of
  tree-sitter's leaves, so closing a string or a bracket is one insertion. An indentation error is fixed
  with whitespace alone;
- write at most one line more than it replaces.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher

from lsp_server import syntax

MIN_TOKEN_EDITS = 3  # a colon, a bracket, a renamed identifier (one out, one in) and one more
TOKEN_EDIT_SHARE = 0.25
EXTRA_LINES = 1  # a closing line (`}`, `end`) may be all a fix needs
MAX_DELETED_MARKS = 1  # an unmatched `)`, a doubled `=`
MAX_RESPELLING = 2  # characters inserted or deleted in a word that stays (a typo: `retrun` -> `return`)

_WORD_OR_MARK = re.compile(r"\w+|\S")


@dataclass(frozen=True)
class Tokens:
    code: tuple[str, ...]  # words and punctuation outside comments, in order
    comments: tuple[str, ...]  # each comment's text, in order
    keywords: frozenset[str] = frozenset()  # the words the grammar read as keywords (`return`, `def`)
    literal: tuple[str, ...] = ()  # the words of ``code`` that are inside string literals
    unsure: tuple[str, ...] = ()  # words after a quote that opens a string and never closes: code or text?
    names: tuple[str, ...] = ()  # the words the grammar read as names (identifiers of any kind)


def tokens(text: str, language: str) -> Tokens:
    """The code and comment tokens of ``text`` as tree-sitter reads it (broken code too: error recovery keeps
    every leaf); whitespace does not count (indentation is CPython's to judge, below)."""
    code: list[str] = []
    comments: list[str] = []
    keywords: set[str] = set()
    literal: list[str] = []
    unsure: list[str] = []
    names: list[str] = []
    open_string = False
    stack = [syntax.parse(text, language).root_node]
    while stack:
        node = stack.pop()
        leaf = (node.text or b"").decode("utf-8", "replace")
        if "comment" in node.type:
            comments.append(leaf.strip())
        elif node.child_count == 0:
            words = [] if node.is_missing else _WORD_OR_MARK.findall(leaf)
            code.extend(words)
            if _is_string_text(node):
                literal.extend(filter(_is_word, words))
            elif open_string or _opens_unclosed_string(node):
                open_string = True
                unsure.extend(filter(_is_word, words))  # an unterminated string: closing it makes these text
            if not node.is_named and node.type == leaf and _is_word(leaf):
                keywords.add(leaf)  # an anonymous leaf spelt as its type: a keyword of the grammar
            elif node.is_named and "identifier" in node.type and _is_word(leaf):
                names.append(leaf)  # identifier, property_identifier, type_identifier, ...
        else:
            stack.extend(reversed(node.children))
    return Tokens(tuple(code), tuple(comments), frozenset(keywords), tuple(literal), tuple(unsure), tuple(names))


def _is_string_text(node) -> bool:
    """The text of a string literal (string_content, string_fragment, an escape), not its quotes."""
    kind = node.type
    return node.is_named and (("string" in kind and not kind.endswith(("_start", "_end"))) or "escape" in kind)


def _opens_unclosed_string(node) -> bool:
    """A string's opening quote that the parser could not match: it sits in an ERROR node."""
    parent = node.parent
    quote = node.type.endswith("string_start") or node.type in ('"', "'", "`")
    return quote and parent is not None and parent.type == "ERROR"


def _into_strings(before: Tokens, after: Tokens) -> list[str]:
    """Words that were code and are now only inside string literals (`print(x` -> `print("x")`): that parses,
    and destroys the code as surely as commenting it out."""
    was_code = Counter(filter(_is_word, before.code)) - Counter(before.literal) - Counter(before.unsure)
    is_code = Counter(filter(_is_word, after.code)) - Counter(after.literal)
    return sorted(((was_code - is_code) & Counter(after.literal)).elements())


def keeps_code(old: str, new: str, language: str, whitespace_only: bool = False, renames: bool = False) -> str | None:
    """None when ``new`` keeps the code of ``old`` (see the module docstring), else why it does not. With
    ``whitespace_only`` (an indentation error) not a token may change. A word may be respelt into a keyword
    (`retrun` -> `return`); into another name only with ``renames`` (another tool's diagnostic, such as an
    undefined name: a syntax error is never fixed by renaming)."""
    before, after = tokens(old, language), tokens(new, language)
    if Counter(after.comments) != Counter(before.comments):
        added = Counter(after.comments) - Counter(before.comments)
        return "the fix turns code into comments" if added else "the fix deletes comments"
    if whitespace_only and after.code != before.code:
        return "an indentation error needs only whitespace changed, and the fix changes code"
    quoted = _into_strings(before, after)
    if quoted:
        return f"the fix turns code into a string ({' '.join(quoted[:5])})"
    respellable = None if renames else after.keywords
    changes = _token_changes(before.code, after.code, respellable)
    if changes.deleted_words:
        return f"the fix deletes code ({' '.join(changes.deleted_words[:5])})"
    if changes.deleted_marks > MAX_DELETED_MARKS:
        return f"the fix deletes code ({changes.deleted_marks} punctuation tokens)"
    budget = max(MIN_TOKEN_EDITS, math.ceil(TOKEN_EDIT_SHARE * len(before.code)))
    if changes.total > budget:
        return f"the fix rewrites the code ({changes.total} tokens changed, at most {budget})"
    repeated = next(filter(None, (_repeated_phrase(before.code, after.code, run) for run in changes.inserted)), None)
    if repeated:
        return f"the fix repeats code of the line ({' '.join(repeated)})"
    repeated_names = _repeated_names(before, after)
    if repeated_names and not renames:
        return f"the fix repeats a name of the line ({' '.join(repeated_names[:5])})"
    if new.count("\n") > old.count("\n") + EXTRA_LINES:
        return "the fix adds lines"
    return None


@dataclass(frozen=True)
class TokenChanges:
    total: int  # tokens inserted plus deleted (a respelt word counts once)
    deleted_words: tuple[str, ...]  # words gone without a close respelling in their place
    deleted_marks: int  # punctuation tokens gone
    inserted: tuple[tuple[int, int], ...] = ()  # where ``new`` has tokens that ``old`` lacks: (start, end)


def _token_changes(old: tuple[str, ...], new: tuple[str, ...], respellable: frozenset[str] | None) -> TokenChanges:
    """What changed from ``old`` to ``new``; a deleted word counts as respelt when a close spelling takes its
    place (of the ``respellable`` words, None: of any)."""
    total, words, marks, inserted = 0, [], 0, []
    for operation, old_start, old_end, new_start, new_end in SequenceMatcher(
        None, old, new, autojunk=False
    ).get_opcodes():
        if operation == "equal":
            continue
        gone, added = list(old[old_start:old_end]), list(new[new_start:new_end])
        total += len(gone) + len(added)
        if added:
            inserted.append((new_start, new_end))
        for word in [token for token in gone if _is_word(token)]:
            respelt = next((other for other in added if _respelt(word, other, respellable)), None)
            if respelt is None:
                words.append(word)
            else:
                added.remove(respelt)
                total -= 1  # one change, not a deletion and an insertion
        marks += sum(1 for token in gone if not _is_word(token))
    return TokenChanges(total, tuple(words), marks, tuple(inserted))


def _repeated_phrase(old: tuple[str, ...], new: tuple[str, ...], run: tuple[int, int]) -> tuple[str, ...]:
    """A phrase of ``old`` (two or more tokens, one a word) that the tokens ``new[start:end]`` insert again, else
    (). An insertion next to tokens equal to its own may be aligned anywhere along them (`values = values =`
    reads as `= values` inserted after the first word as well as `values =` before it), so every such
    position is tried."""
    start, end = run
    width = end - start
    positions = [start]
    while positions[-1] > 0 and new[positions[-1] - 1] == new[positions[-1] + width - 1]:
        positions.append(positions[-1] - 1)  # the same insertion, slid left
    right = start
    while right + width < len(new) and new[right] == new[right + width]:
        right += 1
        positions.append(right)  # slid right
    for position in positions:
        phrase = _longest_common_phrase(old, new[position : position + width])
        if phrase:
            return phrase
    return ()


def _longest_common_phrase(old: tuple[str, ...], inserted: tuple[str, ...]) -> tuple[str, ...]:
    """The longest run of ``inserted`` that also occurs in ``old``, if it has two tokens or more and a word."""
    best: tuple[str, ...] = ()
    for begin in range(len(inserted)):
        for at in range(len(old)):
            length = 0
            while begin + length < len(inserted) and at + length < len(old):
                if inserted[begin + length] != old[at + length]:
                    break
                length += 1
            phrase = inserted[begin : begin + length]
            if length > len(best) and length >= 2 and any(map(_is_word, phrase)):
                best = phrase
    return best


def _repeated_names(before: Tokens, after: Tokens) -> list[str]:
    """Words of the broken lines that the fixed lines have more often as names (`values = [1, 2, values]`).
    Counted against the words, not the names, of the broken lines: `print "x"` reads `print` as a keyword and
    `print("x")` as a name, the same word once. A new name is no repeat (`return a +` -> `return a + b`)."""
    had = Counter(before.code)
    return sorted(word for word in (Counter(after.names) - had).elements() if word in had)


def _is_word(token: str) -> bool:
    return token[:1].isalnum() or token[:1] == "_"


def _respelt(old: str, new: str, respellable: frozenset[str] | None) -> bool:
    """A typo fixed (`retrun` -> `return`, `rr` -> `r`): at most MAX_RESPELLING characters inserted or deleted."""
    if not _is_word(new) or (respellable is not None and new not in respellable):
        return False
    matched = sum(block.size for block in SequenceMatcher(None, old, new, autojunk=False).get_matching_blocks())
    return len(old) + len(new) - 2 * matched <= MAX_RESPELLING


def syntax_verdict(text: str, edited: str, language: str, rows: tuple[int, int], own_syntax: bool) -> str | None:
    """None when ``edited`` (``text`` with ``rows``, first and last, rewritten) has no more syntax problems than
    ``text``, none in those rows, none after them that ``text`` did not have and, for our own syntax diagnostic
    (``own_syntax``), no longer the problem."""
    before = syntax.document_issues(text, syntax.parse(text, language), language)
    after = syntax.document_issues(edited, syntax.parse(edited, language), language)
    if len(after) > len(before):
        return "the fix adds syntax errors"
    first, last = rows
    still = next((issue for issue in after if issue.start_row <= last and issue.end_row >= first), None)
    if still is not None:
        return f"the fixed lines still have syntax errors ({still.message})"
    # The lines after the fix are unchanged, so an error there is one the file had before, at the same place:
    # otherwise the fix caused it (a line indented anew that the next no longer matches, a bracket left open).
    shift = edited.count("\n") - text.count("\n")
    known = {issue.start_row + shift for issue in before if issue.start_row + shift > last}
    caused = next((issue for issue in after if issue.start_row > last and issue.start_row not in known), None)
    if caused is not None:
        return f"the fix breaks a line after it ({caused.message})"
    # CPython reports only its first error: fixing it may reveal the next one, so for Python the problem is gone
    # when the first error is no longer in these rows. tree-sitter reports them all: one fewer.
    if own_syntax and language != "python" and len(after) >= len(before):
        return "the syntax error is still there"
    return None
