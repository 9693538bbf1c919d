"""Re-parse the document with the completion in place and drop the candidate if it adds syntax errors."""

from __future__ import annotations

from lsp_server import syntax
from lsp_server.postprocess.base import FilterContext


def syntax_check(text: str, context: FilterContext) -> str | None:
    if context.language is None:
        return text
    if context.tree is not None:
        broken = syntax.insertion_adds_errors(context.tree, context.prefix, text, context.suffix, context.language)
        return None if broken else text
    before = context.prefix + context.suffix
    after = context.prefix + text + context.suffix
    return None if syntax.adds_syntax_errors(before, after, context.language) else text
