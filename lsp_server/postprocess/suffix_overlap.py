"""Drop text the suffix already has: the rest of the cursor line repeated at the end of the completion, or the
lines that follow the cursor repeated inside a multi-line completion."""

from __future__ import annotations

from lsp_server.postprocess.base import FilterContext

_MIN_REPEATED_LINE = 4  # shorter lines ("}", "end") repeat legitimately


def suffix_overlap(text: str, context: FilterContext) -> str:
    text = _drop_repeated_lines(text, context)
    rest = context.line_after.rstrip()
    if not rest:
        return text
    last_line = text.rsplit("\n", 1)[-1]
    for size in range(min(len(rest), len(last_line)), 0, -1):
        if last_line.endswith(rest[:size]):
            return text[: len(text) - size]
    return text


def _drop_repeated_lines(text: str, context: FilterContext) -> str:
    following = [line.strip() for line in context.lines_after(20) if line.strip()]
    if not context.multiline or not following or len(following[0]) < _MIN_REPEATED_LINE:
        return text
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if index > 0 and line.strip() == following[0]:
            return "\n".join(lines[:index]).rstrip()
    return text
