"""Keep at most ``max_lines`` lines of a multi-line completion."""

from __future__ import annotations

from lsp_server.postprocess.base import FilterContext


def max_lines(text: str, context: FilterContext) -> str:
    lines = text.split("\n")
    return "\n".join(lines[: context.max_lines])
