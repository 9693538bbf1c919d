"""Engines made of engines, for `mimo serve`: replicas of one model (data parallelism) and a deployment's
prompt mode.

Why replicas here and not vLLM's ``data_parallel_size``: the vLLM backend drives vLLM's ``LLMEngine``, whose
client sends every request to data-parallel rank 0 (vLLM's own ``LLM`` refuses ``data_parallel_size > 1``;
only its asyncio server balances ranks). For a dense model such as MiMo-7B the ranks share nothing, so N
independent engines, each on its own GPUs, behind a least-busy dispatcher are what data parallelism is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from engine.api import Chunk, Engine, EngineInfo, GenerationRequest


class ReplicatedEngine:
    """Sends each request to the replica with the fewest requests in flight (the first of equals)."""

    def __init__(self, replicas: Sequence[Engine]):
        if not replicas:
            raise ValueError("a replicated engine needs at least one replica")
        self.replicas = tuple(replicas)
        self.in_flight = [0] * len(self.replicas)
        self.served = [0] * len(self.replicas)  # requests each replica was given

    def info(self) -> EngineInfo:
        return self.replicas[0].info()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        index = min(range(len(self.replicas)), key=self.in_flight.__getitem__)
        self.in_flight[index] += 1
        self.served[index] += 1
        stream = self.replicas[index].generate(request)
        try:
            async for chunk in stream:
                yield chunk
        finally:
            self.in_flight[index] -= 1
            await stream.aclose()

    async def aclose(self) -> None:
        for replica in self.replicas:
            await replica.aclose()


class PromptModeEngine:
    """An engine whose ``info().prompt_mode`` says how its deployment wants completions prompted."""

    def __init__(self, inner: Engine, prompt_mode: str):
        self.inner, self.prompt_mode = inner, prompt_mode

    def info(self) -> EngineInfo:
        return replace(self.inner.info(), prompt_mode=self.prompt_mode)

    def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        return self.inner.generate(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def gpu_slices(visible: Sequence[str], replicas: int, per_replica: int) -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` for each replica: consecutive groups of ``per_replica`` of the visible GPUs
    (tensor x pipeline parallel size each). Raises ValueError when there are too few."""
    needed = replicas * per_replica
    if needed > len(visible):
        raise ValueError(
            f"{replicas} data-parallel replica(s) x {per_replica} GPU(s) each need {needed} GPUs; "
            f"{len(visible)} visible ({','.join(visible) or 'none'})"
        )
    return [",".join(visible[i * per_replica : (i + 1) * per_replica]) for i in range(replicas)]
