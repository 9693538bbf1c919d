"""Request -> Engine -> response objects or SSE lines: plain functions, no HTTP.

Errors are values (`ErrorResponse`) until app.py turns them into a status code. A request's first chunk is
awaited before anything is sent, so errors the engine raises at the start (a prompt longer than the context,
an overloaded engine) still become a proper 400 / 503 on streaming requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio

from engine.api import (
    BadRequest,
    Chunk,
    Engine,
    EngineError,
    EngineUnavailable,
    GenerationRequest,
    ModelNotFound,
    Overloaded,
    Timings,
    Usage,
)
from engine.server.limits import DEFAULT_MAX_BODY_BYTES
from engine.server.metrics import ServerMetrics
from engine.server.protocol import (
    ChatChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatDelta,
    ChatStreamChoice,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    ErrorResponse,
    ModelCard,
    ModelList,
    TimingsInfo,
    UsageInfo,
    error,
    new_id,
)

log = logging.getLogger(__name__)


class Admission:
    """Counts requests in the server (waiting or generating); past `capacity` new ones are turned away."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.active = 0

    def try_enter(self) -> bool:
        if self.active >= self.capacity:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active -= 1


@dataclass
class ServingContext:
    engine: Engine
    model_names: tuple[str, ...]  # names accepted in a request's `model` field; the first is the one reported
    metrics: ServerMetrics
    admission: Admission
    retry_after_s: float = 1.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # larger request bodies get 413 before they are read

    @property
    def model(self) -> str:
        return self.model_names[0]


def error_from_exception(exc: Exception) -> ErrorResponse:
    """The OpenAI error for an engine error; anything else is a bug, logged with its traceback, and a 500."""
    if not isinstance(exc, EngineError):
        log.error("generation failed", exc_info=exc)
        return error(500, f"internal error ({type(exc).__name__}: {exc}); see the server's log", "server_error")
    if isinstance(exc, BadRequest):
        return error(400, str(exc), "invalid_request_error", code=_code_of(exc), param=getattr(exc, "param", None))
    if isinstance(exc, Overloaded):
        return error(503, str(exc), "server_overloaded", retry_after_s=exc.retry_after_s)
    if isinstance(exc, ModelNotFound):
        return error(404, str(exc), "invalid_request_error", code="model_not_found")
    if isinstance(exc, EngineUnavailable):
        return error(503, str(exc), "service_unavailable")
    return error(500, str(exc), "server_error")


def _code_of(exc: BadRequest) -> str | None:
    return "context_length_exceeded" if hasattr(exc, "context_length") else None


def check_model(ctx: ServingContext, requested: str | None) -> ErrorResponse | None:
    if requested is None or requested in ctx.model_names:
        return None
    return error(
        404,
        f"model '{requested}' is not served here; this server serves '{ctx.model}'",
        "invalid_request_error",
        code="model_not_found",
        param="model",
    )


def list_models(ctx: ServingContext) -> ModelList:
    return ModelList(data=[ModelCard(id=ctx.model, max_model_len=ctx.engine.info().context_length)])


# ---- starting and running one generation ---------------------------------------------------------------


class Started:
    """An admitted generation whose first chunk has already arrived (`first` None: it ended without any).

    `close` is idempotent: whoever finishes first (the chunk loop, or the HTTP edge after the client left)
    closes the engine's stream, frees the queue slot and records the outcome.
    """

    def __init__(self, ctx: ServingContext, endpoint: str, first: Chunk | None, stream: AsyncIterator[Chunk]):
        self.ctx, self.endpoint, self.first, self.stream = ctx, endpoint, first, stream
        self.closed = False

    async def close(self, outcome: str, usage: Usage | None = None, timings: Timings | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        await _release(self.ctx, self.stream)
        self.ctx.metrics.record_outcome(self.endpoint, outcome)
        if outcome == "ok":
            self.ctx.metrics.record_generation(usage or Usage(), timings or Timings())


async def start(ctx: ServingContext, endpoint: str, request: GenerationRequest) -> Started | ErrorResponse:
    if not ctx.admission.try_enter():
        ctx.metrics.record_outcome(endpoint, "overloaded")
        message = f"the server's queue is full ({ctx.admission.capacity} requests); retry shortly"
        return error(503, message, "server_overloaded", retry_after_s=ctx.retry_after_s)
    ctx.metrics.running.inc()
    stream = ctx.engine.generate(request)
    try:
        first = await anext(stream, None)
    except Exception as exc:
        await _release(ctx, stream)
        failure = error_from_exception(exc)
        ctx.metrics.record_outcome(endpoint, _outcome_of(failure))
        return failure
    except BaseException:  # cancelled: the client left
        await _release(ctx, stream)
        ctx.metrics.record_outcome(endpoint, "cancelled")
        raise
    return Started(ctx, endpoint, first, stream)


def _outcome_of(failure: ErrorResponse) -> str:
    return "overloaded" if failure.status == 503 else "error" if failure.status >= 500 else "rejected"


async def _release(ctx: ServingContext, stream: AsyncIterator[Chunk]) -> None:
    # Shielded: when the client is gone this runs inside a cancelled scope, and the engine must still hear
    # that its generation is closed.
    with anyio.CancelScope(shield=True):
        await stream.aclose()
    ctx.admission.leave()
    ctx.metrics.running.dec()


async def run(started: Started) -> AsyncIterator[Chunk]:
    """Yields every chunk; closing this iterator (or failing) closes the engine's stream."""
    usage, timings, outcome = Usage(), Timings(), "cancelled"
    try:
        if started.first is not None:
            yield started.first
            usage, timings = started.first.usage or usage, started.first.timings or timings
        async for chunk in started.stream:
            usage, timings = chunk.usage or usage, chunk.timings or timings
            yield chunk
        outcome = "ok"
    except Exception:
        outcome = "error"
        raise
    finally:
        await started.close(outcome, usage, timings)


# ---- completions ------------------------------------------------------------------------------------------


@dataclass
class Gathered:
    texts: list[str]
    finish_reasons: list[str | None]
    usage: Usage
    timings: Timings


async def gather(started: Started, n: int) -> Gathered | ErrorResponse:
    texts, reasons = [""] * n, [None] * n
    usage, timings = Usage(), Timings()
    chunks = run(started)
    try:
        async for chunk in chunks:
            texts[chunk.index] += chunk.text
            reasons[chunk.index] = chunk.finish_reason or reasons[chunk.index]
            usage, timings = chunk.usage or usage, chunk.timings or timings
    except Exception as exc:
        return error_from_exception(exc)
    finally:
        await chunks.aclose()
    return Gathered(texts, reasons, usage, timings)


async def complete(ctx: ServingContext, request: CompletionRequest) -> CompletionResponse | ErrorResponse:
    started = await _check_and_start(ctx, "completions", request)
    if isinstance(started, ErrorResponse):
        return started
    result = await gather(started, request.n)
    if isinstance(result, ErrorResponse):
        return result
    choices = [
        CompletionChoice(index=i, text=t, finish_reason=r)
        for i, (t, r) in enumerate(zip(result.texts, result.finish_reasons))
    ]
    return CompletionResponse(
        model=ctx.model, choices=choices, usage=UsageInfo.of(result.usage), timings=TimingsInfo.of(result.timings)
    )


async def chat(ctx: ServingContext, request: ChatCompletionRequest) -> ChatCompletionResponse | ErrorResponse:
    started = await _check_and_start(ctx, "chat", request)
    if isinstance(started, ErrorResponse):
        return started
    result = await gather(started, request.n)
    if isinstance(result, ErrorResponse):
        return result
    choices = [
        ChatChoice(index=i, message=ChatDelta(role="assistant", content=t), finish_reason=r)
        for i, (t, r) in enumerate(zip(result.texts, result.finish_reasons))
    ]
    return ChatCompletionResponse(
        model=ctx.model, choices=choices, usage=UsageInfo.of(result.usage), timings=TimingsInfo.of(result.timings)
    )


async def _check_and_start(
    ctx: ServingContext, endpoint: str, request: CompletionRequest | ChatCompletionRequest
) -> Started | ErrorResponse:
    wrong_model = check_model(ctx, request.model)
    if wrong_model is not None:
        ctx.metrics.record_outcome(endpoint, "rejected")
        return wrong_model
    return await start(ctx, endpoint, request.to_generation_request())


# ---- streaming (SSE) --------------------------------------------------------------------------------------


@dataclass
class EventStream:
    """SSE lines to send, and the generation behind them (the HTTP edge closes it if the client leaves)."""

    events: AsyncIterator[str]
    started: Started


def sse(payload: str) -> str:
    return f"data: {payload}\n\n"


async def stream_completion(ctx: ServingContext, request: CompletionRequest) -> EventStream | ErrorResponse:
    started = await _check_and_start(ctx, "completions", request)
    if isinstance(started, ErrorResponse):
        return started
    response_id, created = new_id("cmpl"), int(time.time())

    def shape(chunk: Chunk) -> CompletionResponse:
        choice = CompletionChoice(index=chunk.index, text=chunk.text, finish_reason=chunk.finish_reason)
        return CompletionResponse(id=response_id, created=created, model=ctx.model, choices=[choice])

    def shape_usage(usage: Usage, timings: Timings) -> CompletionResponse:
        return CompletionResponse(
            id=response_id,
            created=created,
            model=ctx.model,
            choices=[],
            usage=UsageInfo.of(usage),
            timings=TimingsInfo.of(timings),
        )

    events = _sse_events(started, shape, shape_usage, _wants_usage(request))
    return EventStream(events, started)


async def stream_chat(ctx: ServingContext, request: ChatCompletionRequest) -> EventStream | ErrorResponse:
    started = await _check_and_start(ctx, "chat", request)
    if isinstance(started, ErrorResponse):
        return started
    response_id, created = new_id("chatcmpl"), int(time.time())
    greeted: set[int] = set()  # samples whose first delta (which carries the role) was sent

    def shape(chunk: Chunk) -> ChatCompletionResponse:
        role = None if chunk.index in greeted else "assistant"
        greeted.add(chunk.index)
        choice = ChatStreamChoice(
            index=chunk.index, delta=ChatDelta(role=role, content=chunk.text), finish_reason=chunk.finish_reason
        )
        return ChatCompletionResponse(
            id=response_id, object="chat.completion.chunk", created=created, model=ctx.model, choices=[choice]
        )

    def shape_usage(usage: Usage, timings: Timings) -> ChatCompletionResponse:
        return ChatCompletionResponse(
            id=response_id,
            object="chat.completion.chunk",
            created=created,
            model=ctx.model,
            choices=[],
            usage=UsageInfo.of(usage),
            timings=TimingsInfo.of(timings),
        )

    events = _sse_events(started, shape, shape_usage, _wants_usage(request))
    return EventStream(events, started)


def _wants_usage(request: CompletionRequest | ChatCompletionRequest) -> bool:
    return request.stream_options is not None and request.stream_options.include_usage


async def _sse_events(
    started: Started, shape: Callable, shape_usage: Callable, include_usage: bool
) -> AsyncIterator[str]:
    usage, timings = Usage(), Timings()
    chunks = run(started)
    try:
        async for chunk in chunks:
            usage, timings = chunk.usage or usage, chunk.timings or timings
            if chunk.text or chunk.finish_reason:  # engines send empty chunks while a character is incomplete
                yield sse(shape(chunk).model_dump_json())
        if include_usage:
            yield sse(shape_usage(usage, timings).model_dump_json())
    except Exception as exc:
        # The status line is gone already: report the failure in-band, as OpenAI-compatible servers do.
        yield sse(error_from_exception(exc).model_dump_json())
    finally:
        await chunks.aclose()
    yield sse("[DONE]")
