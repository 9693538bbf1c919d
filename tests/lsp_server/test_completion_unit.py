"""The decisions inside one completion: single or multi-line, the typed-ahead cache, the adaptive debounce."""

from __future__ import annotations

import pytest

from lsp_server.completion import CacheHit, CompletionCache, Debouncer, decide_mode, token_budget
from lsp_server.documents import Document
from lsp_server.postprocess import FilterContext
from lsp_server.settings import CompletionSettings

CURSOR = "║"


def _at(text: str, language: str = "python") -> tuple[Document, int]:
    offset = text.index(CURSOR)
    return Document("file:///t", language, text.replace(CURSOR, "")), offset


@pytest.mark.parametrize(
    ("text", "language", "multiline"),
    [
        ("def f(x):\n    ║\n", "python", True),  # empty block body
        ("def f(x):\n    ║\n    return x\n", "python", False),  # the body exists already
        ("def f(x):║\n", "python", True),  # right after the opener
        ("print(║)\n", "python", False),  # middle of a line: the rest of the line
        ("x = ║ + 1\n", "python", False),
        ("s = 'a:'║\n", "python", False),  # the colon is inside a string
        ("function f() {\n  ║\n}\n", "javascript", True),
        ("if (x) {\n  a();\n  ║\n}\n", "javascript", False),
        ("║", "python", True),  # an empty file
    ],
)
def test_single_or_multi_line_from_the_syntax_at_the_cursor(text, language, multiline):
    assert decide_mode(*_at(text, language)).multiline is multiline


def test_no_completion_inside_a_word():
    assert decide_mode(*_at("pri║nt(x)\n")) is None


def test_a_single_line_asks_for_what_its_line_can_hold():
    settings = CompletionSettings(single_line_tokens=48, multi_line_tokens=192)

    def budget(line_before: str, multiline: bool = False) -> int:
        return token_budget(FilterContext("x = 1\n" + line_before, "\n", "python", multiline), settings)

    assert budget("    result = value * ") == 29  # 99 characters left on the line, about 3.5 a token
    assert budget("") == 35
    assert budget("    " + "x" * 200) == 16  # past the column limit: still room for a short continuation
    assert budget("", multiline=True) == 192
    assert token_budget(FilterContext("", "", None, False), CompletionSettings(single_line_tokens=8)) == 8


def test_cache_serves_typed_ahead_text_and_nothing_else():
    cache = CompletionCache()
    cache.store("u", "x = ", "\n", "compute(a)", "id1")
    assert cache.lookup("u", "x = ", "\n") == CacheHit("compute(a)", "id1")
    assert cache.lookup("u", "x = comp", "\n") == CacheHit("ute(a)", "id1")
    assert cache.lookup("u", "x = cx", "\n") is None  # typed something else
    assert cache.lookup("u", "x = comp", "\n\n") is None  # the suffix changed
    assert cache.lookup("other", "x = ", "\n") is None
    assert cache.lookup("u", "x = compute(a)", "\n") is None  # typed it all: time for a new suggestion


def test_cache_forgets_the_least_recently_used():
    cache = CompletionCache(capacity=2)
    for i in range(3):
        cache.store("u", f"p{i}", "", "x")
    assert cache.lookup("u", "p0", "") is None and cache.lookup("u", "p2", "").text == "x"


def test_debounce_waits_longer_while_typing_fast_but_never_past_the_bounds():
    debouncer = Debouncer(min_s=0.05, max_s=0.3)
    assert debouncer.delay("u", 0.0, invoked=False) == 0.05
    delays = [debouncer.delay("u", 0.15 * i, invoked=False) for i in range(1, 10)]
    assert 0.2 <= delays[-1] <= 0.3
    assert debouncer.delay("u", 10.0, invoked=True) == 0.0


def test_the_prompt_budget_follows_where_the_model_runs_unless_set():
    from engine.api import EngineInfo
    from lsp_server.completion import LOCAL_CPU_CONTEXT_TOKENS, SERVER_CONTEXT_TOKENS, context_budget

    def info(backend: str, device: str) -> EngineInfo:
        return EngineInfo(model="m", backend=backend, context_length=4096, fim_template=None, device=device)

    auto = CompletionSettings()
    assert context_budget(auto, info("native", "cpu")) == LOCAL_CPU_CONTEXT_TOKENS
    assert context_budget(auto, info("vllm", "cpu")) == LOCAL_CPU_CONTEXT_TOKENS
    assert context_budget(auto, info("native", "cuda")) == SERVER_CONTEXT_TOKENS
    assert context_budget(auto, info("remote", "http://gpu-box:8000/v1")) == SERVER_CONTEXT_TOKENS
    assert LOCAL_CPU_CONTEXT_TOKENS < SERVER_CONTEXT_TOKENS
    assert context_budget(CompletionSettings(context_tokens=2048), info("native", "cpu")) == 2048
