"""An engine that answers at once with a fixed text: it measures the server's own overhead (`mimo bench lsp`)
and lets protocol tests pace a stream. It implements the Engine protocol, our own boundary, and counts
the streams it opened and the ones closed before their end (the proof that cancellation reaches the engine).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from engine.api import Chunk, EngineInfo, GenerationRequest, Usage


@dataclass
class StreamCounters:
    opened: int = 0
    finished: int = 0  # streamed to their end
    closed_early: int = 0  # closed or cancelled before their end


class InstantEngine:
    def __init__(self, text: str, delay_s: float = 0.0, chunk_chars: int = 1):
        self.text = text
        self.delay_s = delay_s
        self.chunk_chars = max(1, chunk_chars)
        self.counters = StreamCounters()

    def info(self) -> EngineInfo:
        return EngineInfo(model="instant", backend="instant", context_length=1 << 20, fim_template="instant")

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        self.counters.opened += 1
        finished = False
        try:
            pieces = [self.text[i : i + self.chunk_chars] for i in range(0, len(self.text), self.chunk_chars)]
            for index, piece in enumerate(pieces):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                last = index == len(pieces) - 1
                yield Chunk(text=piece, finish_reason="stop" if last else None, usage=Usage(1, index + 1))
            finished = True
        finally:
            if finished:
                self.counters.finished += 1
            else:
                self.counters.closed_early += 1

    async def aclose(self) -> None:
        return None
