"""compute_fix with a chat-only engine: the corrected lines come from a fenced block and are checked."""

from __future__ import annotations

from collections.abc import AsyncIterator

from lsprotocol import types as lsp

from engine.api import Chunk, EngineInfo, GenerationRequest
from lsp_server.diagnostics import syntax_diagnostics
from lsp_server.documents import Document
from lsp_server.fixits import compute_fix, request_for

BROKEN = "def f(x):\n    return x +\n\nprint(f(1))\n"


class ChatEngine:
    """Answers every chat request with a fixed reply; no FIM template, so fix-its must use chat."""

    def __init__(self, reply: str):
        self.reply = reply
        self.requests: list[GenerationRequest] = []

    def info(self) -> EngineInfo:
        return EngineInfo(model="chat", backend="test", context_length=4096, fim_template=None)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        self.requests.append(request)
        yield Chunk(text=self.reply, finish_reason="stop")

    async def aclose(self) -> None:
        return None


def _request(document: Document):
    (diagnostic,) = syntax_diagnostics(document)
    return request_for(document.uri, diagnostic)


async def test_chat_model_fix_comes_from_the_fenced_block():
    document = Document("file:///f.py", "python", BROKEN)
    engine = ChatEngine("Here you go:\n```python\n    return x + 1\n```\n")
    outcome = await compute_fix(engine, document, _request(document))
    assert outcome.edit is not None and outcome.edit.new_text == " 1"
    (request,) = engine.requests
    assert request.messages is not None and "return x +" in request.messages[-1].content


async def test_chat_reply_without_code_or_still_broken_is_not_offered():
    document = Document("file:///f.py", "python", BROKEN)
    for reply in ("I cannot help with that.", "```\n    return (x +\n```"):
        outcome = await compute_fix(ChatEngine(reply), document, _request(document))
        assert outcome.edit is None and outcome.reason


def test_a_range_ending_at_column_zero_does_not_take_the_next_line():
    diagnostic = lsp.Diagnostic(range=lsp.Range(lsp.Position(2, 0), lsp.Position(4, 0)), message="m")
    request = request_for("file:///f.py", diagnostic)
    assert (request.first_line, request.last_line) == (2, 3)


async def test_a_fix_that_loses_the_indentation_is_not_offered():
    """tree-sitter parses `return x + 1` at column 0 inside a def; CPython (and the check) does not."""
    document = Document(uri="file:///t.py", language="python", text=BROKEN)
    outcome = await compute_fix(ChatEngine("```python\nreturn x + 1\n```"), document, _request(document))
    assert outcome.edit is None and "do not compile" in outcome.reason
    indented = await compute_fix(ChatEngine("```python\n    return x + 1\n```"), document, _request(document))
    assert indented.edit is not None
