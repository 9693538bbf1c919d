"""Trailing whitespace and blank lines add nothing to a suggestion; a blank suggestion is no suggestion."""

from __future__ import annotations

from lsp_server.postprocess.base import FilterContext


def trim(text: str, context: FilterContext) -> str | None:
    cleaned = "\n".join(line.rstrip() for line in text.rstrip().split("\n"))
    return cleaned if cleaned.strip() else None
