"""Balance the brackets the completion opened, and cut where it closes a bracket nobody opened.

Only code brackets count: one in a string, comment or regex literal opens and closes nothing (code_brackets).
Closers are appended only when the text after the cursor does not already close them, so `foo(|)` completed
with `a, b` stays `foo(a, b)`, and never when the completion ends inside a comment or string.
"""

from __future__ import annotations

from collections.abc import Iterable

from lsp_server.postprocess.base import FilterContext
from lsp_server.postprocess.code_brackets import BRACKETS, CodeBrackets, code_brackets

PAIRS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in PAIRS.items()}


def open_brackets(brackets: Iterable[str]) -> list[str]:
    """The brackets still open after ``brackets`` (a closer with no matching opener is passed over)."""
    stack: list[str] = []
    for bracket in brackets:
        if bracket in PAIRS:
            stack.append(bracket)
        elif stack and stack[-1] == CLOSERS[bracket]:
            stack.pop()
    return stack


def brackets(text: str, context: FilterContext) -> str:
    if BRACKETS.search(text) is None:
        return text  # nothing to cut or balance (and no parse)
    code = code_brackets(text, context)
    cut = _unopened_closer(code)
    if cut is not None:
        text = text[:cut].rstrip()
    opened = open_brackets(bracket for index, bracket in code.inside if index < len(text))
    kept = text.rstrip()
    if not opened or kept.endswith("\\") or code.in_text(len(kept) - 1):
        return text
    closers = "".join(PAIRS[b] for b in reversed(opened))
    if context.line_after.lstrip().startswith(closers[0]):
        return text  # the suffix closes them already (the syntax check judges the rest)
    return text + closers


def _unopened_closer(code: CodeBrackets) -> int | None:
    """Where the completion closes a bracket it did not open and that is not open before the cursor either."""
    prefix_open: list[str] | None = None  # worked out at the first such closer: most completions have none
    own: list[str] = []
    for index, bracket in code.inside:
        if bracket in PAIRS:
            own.append(bracket)
        elif own:
            own.pop()
        else:
            if prefix_open is None:
                prefix_open = open_brackets(code.before)
            if prefix_open and prefix_open[-1] == CLOSERS[bracket]:
                prefix_open.pop()
            else:
                return index
    return None
