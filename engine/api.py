"""The one engine interface every caller uses (language server, review, evaluation, RL).

Plain dataclasses in, an async stream of ``Chunk`` out. Cancelling means closing the iterator (``aclose()``) or
cancelling the task that consumes it; a backend must stop using compute for that request within one decode step.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length", "cancelled", "error"]


# k, the native backend's MTP drafts per step: 3 decoded fastest for nano on CPU (docs/benchmarks.md), and MiMo
# drafts three tokens at inference (its MTP layer and two copies of it).
DEFAULT_DRAFT_TOKENS = 3
MAX_DRAFT_TOKENS = 8


@dataclass(frozen=True)
class FimParts:
    """A fill-in-the-middle request; the engine renders it with the model's FIM template."""

    prefix: str
    suffix: str
    # Optional header rendered before the prefix: the file path / language line and cross-file snippets.
    header: str = ""


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 128
    temperature: float = 0.0  # 0 (or below engine.sampling.GREEDY_BELOW) = greedy
    top_p: float = 1.0
    seed: int | None = None  # -2**63 to 2**64 - 1; each of the n samples gets its own stream from it
    stop: tuple[str, ...] = ()
    n: int = 1
    # Constrain the output to this JSON schema: grammar-constrained decoding on the native backend
    # (engine.grammar) and vLLM, `response_format` for OpenAI-compatible servers. A schema the backend cannot
    # enforce is a BadRequest.
    json_schema: dict | None = None
    # OpenAI's logit bias (token id -> a value from -100 to 100 added to its logit) and presence and frequency
    # penalties (-2 to 2) over the tokens generated so far; engine.sampling checks them.
    logit_bias: dict[int, float] | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


@dataclass(frozen=True)
class GenerationRequest:
    """Exactly one of ``prompt`` (raw completion), ``fim`` or ``messages`` (chat) is set."""

    prompt: str | None = None
    fim: FimParts | None = None
    messages: tuple[Message, ...] | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    use_mtp: bool = True  # speculative decoding with the model's MTP layers, where the backend has it
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        given = [x is not None for x in (self.prompt, self.fim, self.messages)]
        if sum(given) != 1:
            raise ValueError("a GenerationRequest needs exactly one of prompt, fim or messages")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Timings:
    time_to_first_token_s: float = 0.0
    total_s: float = 0.0
    tokens_per_s: float = 0.0
    mtp_drafts_proposed: int = 0
    mtp_drafts_accepted: int = 0
    mtp_steps: int = 0  # draft-and-verify steps (each proposes k drafts)
    mtp_accepted_per_position: tuple[int, ...] = ()  # [i]: steps whose first i + 1 drafts were all accepted


@dataclass(frozen=True)
class Chunk:
    """New text for sample ``index``. The last chunk of each sample has ``finish_reason`` (and usage, timings)."""

    text: str
    index: int = 0
    token_ids: tuple[int, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    timings: Timings | None = None


@dataclass(frozen=True)
class Result:
    texts: list[str]
    finish_reasons: list[FinishReason | None]
    usage: Usage
    timings: Timings


@dataclass(frozen=True)
class EngineInfo:
    model: str
    backend: str  # "native", "vllm", "remote", ...
    context_length: int
    fim_template: str | None  # name of the detected FIM template, None if the model has none
    mtp_layers: int = 0
    device: str = "cpu"
    draft_tokens: int = 0  # MTP drafts per step (0: no speculative decoding)
    fallback_reason: str | None = None  # set by the router while it serves from the local fallback
    # The languages the model's card says it was trained on (engine.model_card); None: it claims none, so any.
    languages: tuple[str, ...] | None = None
    # How completions should be prompted ("fim", "prefix", "chat") when the deployment says so (`mimo serve
    # --prompt-mode`); None: by model family, engine.formats.default_prompt_mode.
    prompt_mode: str | None = None


class EngineError(Exception):
    """An engine problem a caller can show to a person; subclasses say which."""


class BadRequest(EngineError):
    pass


class PromptTooLong(BadRequest):
    def __init__(self, prompt_tokens: int, context_length: int):
        super().__init__(f"prompt has {prompt_tokens} tokens but the model's context is {context_length} tokens")
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length


class Overloaded(EngineError):
    def __init__(self, message: str, retry_after_s: float = 1.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class EngineUnavailable(EngineError):
    pass


class ModelNotFound(EngineError):
    pass


@runtime_checkable
class Engine(Protocol):
    def info(self) -> EngineInfo: ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]: ...

    async def aclose(self) -> None: ...


async def collect(engine: Engine, request: GenerationRequest) -> Result:
    """Runs a request to completion and gathers its chunks, one text per sample."""
    n = request.sampling.n
    texts = [""] * n
    reasons: list[FinishReason | None] = [None] * n
    usage, timings = Usage(), Timings()
    stream = engine.generate(request)
    try:
        async for chunk in stream:
            texts[chunk.index] += chunk.text
            if chunk.finish_reason is not None:
                reasons[chunk.index] = chunk.finish_reason
            usage = chunk.usage or usage
            timings = chunk.timings or timings
    finally:
        await stream.aclose()
    return Result(texts=texts, finish_reasons=reasons, usage=usage, timings=timings)
