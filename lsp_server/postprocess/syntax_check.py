"""Drop the candidate if it adds syntax errors: checked in the statements around the cursor when the caller
has them (LocalSyntax), else by re-parsing the whole document with the completion in place."""

from __future__ import annotations

from lsp_server import syntax
from lsp_server.postprocess.base import FilterContext


def syntax_check(text: str, context: FilterContext) -> str | None:
    if context.language is None:
        return text
    if context.syntax is not None:
        return None if context.syntax.insertion_adds_errors(text) else text
    before = context.prefix + context.suffix
    after = context.prefix + text + context.suffix
    return None if syntax.adds_syntax_errors(before, after, context.language) else text
