"""Drop the loops small models fall into: the same line three or more times in a row (a loop: one copy
is kept), or a completion that is one character repeated ("________")."""

from __future__ import annotations

from lsp_server.postprocess.base import FilterContext

LOOP_COPIES = 3  # this many consecutive copies of a line are a loop, not code
MIN_DEGENERATE_RUN = 8


def repetition(text: str, context: FilterContext) -> str | None:
    body = text.strip()
    if len(body) >= MIN_DEGENERATE_RUN and len(set(body)) == 1:
        return None
    lines = text.split("\n")
    repeats = 1
    for index in range(1, len(lines)):
        same = lines[index].strip() and lines[index] == lines[index - 1]
        repeats = repeats + 1 if same else 1
        if repeats >= LOOP_COPIES:
            return "\n".join(lines[: index - 1])
    return text
