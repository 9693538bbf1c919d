"""FastAPI routes only: JSON in, serving.py's values out, and the HTTP details (status, SSE, Retry-After).

Client disconnects cancel generation: until the first chunk (or the whole answer, without streaming) the work
races the disconnect; after that, streaming responses listen for it beside the stream.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from engine.server import serving
from engine.server.auth import ApiKey, ApiKeyMiddleware
from engine.server.limits import BodyLimit
from engine.server.protocol import ChatCompletionRequest, CompletionRequest, ErrorResponse, error
from engine.server.serving import EventStream, ServingContext

T = TypeVar("T")
CLIENT_CLOSED_REQUEST = 499  # nginx's code; nobody reads it, the client is gone


def create_app(ctx: ServingContext, api_key: str | None = None) -> FastAPI:
    """The server's routes; with ``api_key`` every route but /health answers 401 without that bearer key."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await ctx.engine.aclose()

    app = FastAPI(title="mimo serve", lifespan=lifespan)
    app.state.ctx = ctx
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(BodyLimit, max_bytes=ctx.max_body_bytes)
    if api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=ApiKey(api_key))

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        work = serving.stream_completion(ctx, body) if body.stream else serving.complete(ctx, body)
        return _to_response(await _unless_disconnected(request, work))

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        work = serving.stream_chat(ctx, body) if body.stream else serving.chat(ctx, body)
        return _to_response(await _unless_disconnected(request, work))

    @app.get("/v1/models")
    async def models() -> Response:
        listing = serving.list_models(ctx).model_dump()
        mode = ctx.engine.info().prompt_mode
        for card in listing["data"]:  # our extension: how the deployment wants completions prompted
            card["prompt_mode"] = mode
        return JSONResponse(listing)

    @app.get("/health")
    async def health() -> dict:
        info = ctx.engine.info()
        return {
            "status": "ok",
            "model": ctx.model,
            "backend": info.backend,
            "device": info.device,
            "prompt_mode": info.prompt_mode,
        }

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(ctx.metrics.render(), media_type=ctx.metrics.content_type)

    return app


def _to_response(value: BaseModel | EventStream | None) -> Response:
    if value is None:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    if isinstance(value, EventStream):
        return _CancellingEventStream(value)
    if isinstance(value, ErrorResponse):
        headers = {} if value.retry_after_s is None else {"Retry-After": str(math.ceil(value.retry_after_s))}
        return JSONResponse(value.model_dump(), status_code=value.status, headers=headers)
    return JSONResponse(value.model_dump())


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """Runs `work`, cancelling it if the client disconnects first (then returns None)."""
    result: list[T] = []
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            await _wait_for_disconnect(request.receive)
            group.cancel_scope.cancel()

        group.start_soon(watch)
        result.append(await work)
        group.cancel_scope.cancel()
    return result[0] if result else None


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class _CancellingEventStream(StreamingResponse):
    """Streams SSE while listening for the client's disconnect, whatever the ASGI version (Starlette only
    listens on ASGI < 2.4 and otherwise notices only on the next write, which a stalled engine never makes).
    """

    def __init__(self, stream: EventStream):
        super().__init__(stream.events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self.started = stream.started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def stream_then_stop() -> None:
                    try:
                        await self.stream_response(send)
                    except OSError:  # the client left during a write
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(stream_then_stop)
                await _wait_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()
                await self.started.close("cancelled")


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        message, param = f"the request body is not valid JSON ({first.get('ctx', {}).get('error', '')})", None
    else:
        param = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
        message = f"{param or 'body'}: {first.get('msg', 'invalid value')}"
    return _to_response(error(400, message, "invalid_request_error", param=param))


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return _to_response(
        error(
            exc.status_code,
            f"{request.method} {request.url.path}: {exc.detail}",
            "not_found" if exc.status_code == 404 else "invalid_request_error",
        )
    )
