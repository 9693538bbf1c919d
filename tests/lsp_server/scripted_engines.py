"""Engines with scripted answers, for fix-it tests (the Engine protocol is our own boundary)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from engine.api import Chunk, EngineInfo, GenerationRequest


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


class InfillEngine:
    """A FIM engine that answers its requests with the given texts in turn (the last one over and over), one per
    sample asked for."""

    def __init__(self, *answers: str):
        self.answers = list(answers)
        self.requests: list[GenerationRequest] = []

    def info(self) -> EngineInfo:
        return EngineInfo(model="infill", backend="test", context_length=4096, fim_template="test")

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        self.requests.append(request)
        for index in range(request.sampling.n):
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            yield Chunk(text=answer, index=index, finish_reason="stop")

    async def aclose(self) -> None:
        return None
