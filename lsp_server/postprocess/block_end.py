"""Stop where the completion leaves the block it started in: the first later line indented less than the
completion's first line belongs to the enclosing code, which the suffix already holds."""

from __future__ import annotations

from lsp_server.postprocess.base import FilterContext, indent_of


def block_end(text: str, context: FilterContext) -> str:
    if not context.multiline:
        return text
    lines = text.split("\n")
    first = context.line_before + lines[0]
    if first.strip():
        start_index, base = 1, indent_of(first)
    else:  # the completion starts with a line break: its first non-empty line sets the level
        start_index = next((i for i, line in enumerate(lines) if i > 0 and line.strip()), len(lines))
        base = indent_of(lines[start_index]) if start_index < len(lines) else 0
        start_index += 1
    for index in range(start_index, len(lines)):
        line = lines[index]
        if line.strip() and indent_of(line) < base:
            return "\n".join(lines[:index]).rstrip()
    return text
