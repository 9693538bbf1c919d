"""Hypothesis over the post-processing pipeline: any model text in any of our languages is cleaned without an
error, and what comes out has no control token, no loop and, for a single line, one line."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsp_server.documents import Document
from lsp_server.postprocess import FilterContext, run_pipeline
from lsp_server.postprocess.repetition import _first_loop, _has_unit_loop
from lsp_server.postprocess.stop_sequences import STOP_TOKENS

CONTEXTS = {
    "python": ("def f(xs):\n    ", "\n    return xs\n"),
    "go": ("package main\n\nfunc add(a int, b int) int {\n\t", "\n}\n"),
    "rust": ("fn main() {\n    let v = [5.0, 5.0];\n    // ", "\n}\n"),
    "javascript": ("function f(a) {\n  return g(", ");\n}\n"),
}
_PIECES = st.sampled_from(
    ["x = 1", "const uint8* ret = 0;", "5.0, ", "0, ", "\n", "\n\t", "\n    ", "(", ")", "}", "{", "#", "//", "'",
     "return a + b", "<|endoftext|>", "<|fim_middle|>", "________", "if x:", "ab", " "]
)  # fmt: skip
_TEXT = st.one_of(st.text(max_size=120), st.lists(_PIECES, max_size=40).map("".join))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(language=st.sampled_from(sorted(CONTEXTS)), text=_TEXT, multiline=st.booleans(), local=st.booleans())
def test_any_text_is_cleaned_without_error_and_without_loops(language, text, multiline, local):
    prefix, suffix = CONTEXTS[language]
    syntax = Document("file:///t", language, prefix + suffix).syntax_near(len(prefix)) if local else None
    result = run_pipeline(text, FilterContext(prefix, suffix, language, multiline, 12, syntax))
    if result is None:
        return
    assert result.strip() and not any(token in result for token in STOP_TOKENS)
    lines = result.split("\n")
    assert multiline or sum(1 for line in lines if line.strip()) == 1  # (after a line break, at a line's end)
    placed = [prefix.rsplit("\n", 1)[-1] + lines[0], *lines[1:]]
    assert _first_loop(placed) is None and not any(_has_unit_loop(line) for line in placed)
