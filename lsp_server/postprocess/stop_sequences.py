"""Cut at the model's control tokens and, for a single-line completion, at the first line break."""

from __future__ import annotations

from engine.special_tokens import SPECIAL_TOKENS
from lsp_server.postprocess.base import FilterContext

STOP_TOKENS: tuple[str, ...] = SPECIAL_TOKENS


def stop_sequences(text: str, context: FilterContext) -> str:
    for token in STOP_TOKENS:
        index = text.find(token)
        if index != -1:
            text = text[:index]
    if not context.multiline:
        # A completion that starts with a line break (at the end of a line) keeps its first non-empty line.
        lead = len(text) - len(text.lstrip("\r\n")) if not context.line_after.strip() else 0
        end = text.find("\n", lead)
        if end != -1:
            text = text[:end]
    return text
