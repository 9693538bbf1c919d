"""Balance the brackets the completion opened, and cut where it closes a bracket nobody opened.

Closers are appended only when the text after the cursor does not already close them, so `foo(|)` completed
with `a, b` stays `foo(a, b)`.
"""

from __future__ import annotations

from lsp_server.postprocess.base import FilterContext

PAIRS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in PAIRS.items()}
_QUOTES = "\"'`"


def open_brackets(text: str) -> list[str]:
    """The brackets still open at the end of ``text``, skipping string contents (a rough, fast scan)."""
    stack: list[str] = []
    quote = ""
    escaped = False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote or ch == "\n":
                quote = ""
        elif ch in _QUOTES:
            quote = ch
        elif ch in PAIRS:
            stack.append(ch)
        elif ch in CLOSERS:
            if stack and stack[-1] == CLOSERS[ch]:
                stack.pop()
    return stack


def brackets(text: str, context: FilterContext) -> str:
    text = _cut_at_unopened_closer(text, context)
    opened = open_brackets(text)
    if not opened or text.rstrip().endswith(("\\",)):
        return text
    closers = "".join(PAIRS[b] for b in reversed(opened))
    if context.line_after.lstrip().startswith(closers[0]):
        return text  # the suffix closes them already (the syntax check judges the rest)
    return text + closers


def _cut_at_unopened_closer(text: str, context: FilterContext) -> str:
    """A closer with no opener in the completion must close something open before the cursor."""
    prefix_open: list[str] | None = None  # scanned at the first such closer: most completions have none
    own: list[str] = []
    for index, ch in enumerate(text):
        if ch in PAIRS:
            own.append(ch)
        elif ch in CLOSERS:
            if own:
                own.pop()
                continue
            if prefix_open is None:
                prefix_open = open_brackets(context.prefix[-2000:])  # the statement at the cursor, roughly
            if prefix_open and prefix_open[-1] == CLOSERS[ch]:
                prefix_open.pop()
            else:
                return text[:index].rstrip()
    return text
