"""What a fix-it may change: the checks a model's replacement for a diagnostic's lines must pass before it is
offered. Plain functions over text.

A fix must parse, and it must keep the code. Both were needed: a small model "fixed" a missing colon by turning
the whole function into comments, and an unclosed parenthesis by replacing four lines with C preprocessor
lines, which Python reads as comments. Both parsed and both made the error go away. So a replacement must:

- leave the document with no more syntax problems than before, none in the lines it wrote, and (for our own
  syntax diagnostics) without the problem it was asked to fix;
- keep the comments of the lines it replaces exactly: no code turned into comments, no comment added or lost;
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


def tokens(text: str, language: str) -> Tokens:
    """The code and comment tokens of ``text`` as tree-sitter reads it (broken code too: error recovery keeps
    every leaf); whitespace does not count (indentation is CPython's to judge, below)."""
    code: list[str] = []
    comments: list[str] = []
    keywords: set[str] = set()
    stack = [syntax.parse(text, language).root_node]
    while stack:
        node = stack.pop()
        leaf = (node.text or b"").decode("utf-8", "replace")
        if "comment" in node.type:
            comments.append(leaf.strip())
        elif node.child_count == 0:
            if not node.is_missing:
                code.extend(_WORD_OR_MARK.findall(leaf))
            if not node.is_named and node.type == leaf and _is_word(leaf):
                keywords.add(leaf)  # an anonymous leaf spelt as its type: a keyword of the grammar
        else:
            stack.extend(reversed(node.children))
    return Tokens(tuple(code), tuple(comments), frozenset(keywords))


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
    respellable = None if renames else after.keywords
    changes = _token_changes(before.code, after.code, respellable)
    if changes.deleted_words:
        return f"the fix deletes code ({' '.join(changes.deleted_words[:5])})"
    if changes.deleted_marks > MAX_DELETED_MARKS:
        return f"the fix deletes code ({changes.deleted_marks} punctuation tokens)"
    budget = max(MIN_TOKEN_EDITS, math.ceil(TOKEN_EDIT_SHARE * len(before.code)))
    if changes.total > budget:
        return f"the fix rewrites the code ({changes.total} tokens changed, at most {budget})"
    if new.count("\n") > old.count("\n") + EXTRA_LINES:
        return "the fix adds lines"
    return None


@dataclass(frozen=True)
class TokenChanges:
    total: int  # tokens inserted plus deleted (a respelt word counts once)
    deleted_words: tuple[str, ...]  # words gone without a close respelling in their place
    deleted_marks: int  # punctuation tokens gone


def _token_changes(old: tuple[str, ...], new: tuple[str, ...], respellable: frozenset[str] | None) -> TokenChanges:
    """What changed from ``old`` to ``new``; a deleted word counts as respelt when a close spelling takes its
    place (of the ``respellable`` words, None: of any)."""
    total, words, marks = 0, [], 0
    for operation, old_start, old_end, new_start, new_end in SequenceMatcher(
        None, old, new, autojunk=False
    ).get_opcodes():
        if operation == "equal":
            continue
        gone, added = list(old[old_start:old_end]), list(new[new_start:new_end])
        total += len(gone) + len(added)
        for word in [token for token in gone if _is_word(token)]:
            respelt = next((other for other in added if _respelt(word, other, respellable)), None)
            if respelt is None:
                words.append(word)
            else:
                added.remove(respelt)
                total -= 1  # one change, not a deletion and an insertion
        marks += sum(1 for token in gone if not _is_word(token))
    return TokenChanges(total, tuple(words), marks)


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
    ``text``, none in those rows and, for our own syntax diagnostic (``own_syntax``), no longer the problem."""
    before = syntax.document_issues(text, syntax.parse(text, language), language)
    after = syntax.document_issues(edited, syntax.parse(edited, language), language)
    if len(after) > len(before):
        return "the fix adds syntax errors"
    first, last = rows
    still = next((issue for issue in after if issue.start_row <= last and issue.end_row >= first), None)
    if still is not None:
        return f"the fixed lines still have syntax errors ({still.message})"
    # CPython reports only its first error: fixing it may reveal the next one, so for Python the problem is gone
    # when the first error is no longer in these rows. tree-sitter reports them all: one fewer.
    if own_syntax and language != "python" and len(after) >= len(before):
        return "the syntax error is still there"
    return None
