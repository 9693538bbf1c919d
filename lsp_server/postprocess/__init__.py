"""The post-processing chain: the order lives in PIPELINE, each filter in its own file."""

from __future__ import annotations

from lsp_server.postprocess.base import Filter, FilterContext
from lsp_server.postprocess.block_end import block_end
from lsp_server.postprocess.brackets import brackets
from lsp_server.postprocess.max_lines import max_lines
from lsp_server.postprocess.repetition import repetition
from lsp_server.postprocess.stop_sequences import stop_sequences
from lsp_server.postprocess.suffix_overlap import suffix_overlap
from lsp_server.postprocess.syntax_check import syntax_check
from lsp_server.postprocess.trim import trim

# Cheap text filters first; the syntax check (a full parse) runs once, last, on the final text.
PIPELINE: tuple[Filter, ...] = (
    stop_sequences,
    max_lines,
    block_end,
    repetition,
    suffix_overlap,
    brackets,
    trim,
    syntax_check,
)

# The filters that only ever shorten the text: when one of them cuts a streamed completion, more tokens
# cannot change the result, so the stream can stop early.
CUTTING: tuple[Filter, ...] = (stop_sequences, max_lines, block_end)


def run_pipeline(text: str, context: FilterContext, filters: tuple[Filter, ...] = PIPELINE) -> str | None:
    result: str | None = text
    for step in filters:
        result = step(result, context)
        if result is None:
            return None
    return result


def is_final(text: str, context: FilterContext) -> bool:
    """True once more streamed text cannot change the cleaned completion (a cutting filter cut it)."""
    cut = run_pipeline(text, context, CUTTING)
    return cut is not None and len(cut) < len(text.rstrip(" \t"))


__all__ = [
    "CUTTING", "PIPELINE", "Filter", "FilterContext", "is_final", "run_pipeline",
    "block_end", "brackets", "max_lines", "repetition", "stop_sequences", "suffix_overlap", "syntax_check", "trim",
]  # fmt: skip
