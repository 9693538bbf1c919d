"""A fake OpenAI-compatible server (FastAPI on uvicorn, 127.0.0.1) that answers like a reasoning model such as
MiMo-7B-RL: it thinks in <think>…</think> before its JSON answer, or streams the thinking in vLLM's separate
`reasoning` field (a server run with --reasoning-parser), or thinks without end. Each streamed piece counts as
one token against max_tokens; the server records how many pieces it sent before the client hung up."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

Answer = Callable[[list[dict]], tuple[str, str | None]]  # messages -> (thinking, answer or None: never ends)
PIECE = 8  # characters per streamed piece (one "token")


@dataclass
class ReasoningServer:
    answer: Answer
    mode: str = "inline"  # "inline": <think> in the text; "opened": the template opened it; "parser": reasoning field
    api_key: str | None = None
    model_id: str = "fake-mimo-rl"
    context_length: int = 32768
    bodies: list[dict] = field(default_factory=list)
    pieces_sent: list[int] = field(default_factory=list)  # per request, until it ended or the client left
    seen_authorization: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = self._build()
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def __enter__(self) -> ReasoningServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization")
        self.seen_authorization.append(header)
        return self.api_key is None or header == f"Bearer {self.api_key}"

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models(request: Request):
            if not self._authorized(request):
                return _error(401, "invalid API key")
            return {"data": [{"id": self.model_id, "max_model_len": self.context_length}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            if not self._authorized(request):
                return _error(401, "invalid API key")
            body = await request.json()
            self.bodies.append(body)
            thinking, answer = self.answer(body["messages"])
            index = len(self.pieces_sent)
            self.pieces_sent.append(0)
            events = self._events(request, index, thinking, answer, int(body.get("max_tokens") or 16))
            return StreamingResponse(events, media_type="text/event-stream")

        return app

    async def _events(self, request: Request, index: int, thinking: str, answer: str | None, max_tokens: int):
        finish = "stop"
        for field_name, piece in self._pieces(thinking, answer):
            if self.pieces_sent[index] >= max_tokens:
                finish = "length"
                break
            if await request.is_disconnected():
                return
            self.pieces_sent[index] += 1
            yield _event({"choices": [{"index": 0, "delta": {field_name: piece}, "finish_reason": None}]})
            await asyncio.sleep(0.002)  # a model's pace, so a client that hangs up is noticed
        yield _event({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        yield _event({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": self.pieces_sent[index]}})
        yield "data: [DONE]\n\n"

    def _pieces(self, thinking: str, answer: str | None):
        """(field, text) pieces: the thinking (endless when the answer is None), then the answer."""
        thought_field = "reasoning" if self.mode == "parser" else "content"
        opening = "<think>" if self.mode == "inline" else ""
        closing = "" if self.mode == "parser" else "</think>"
        for text in (opening, *_chunks(thinking)):
            if text:
                yield thought_field, text
        while answer is None:
            yield thought_field, "and then I wonder whether... "
        if closing:
            yield "content", closing
        for text in _chunks(answer):
            yield "content", text


def _chunks(text: str) -> list[str]:
    return [text[i : i + PIECE] for i in range(0, len(text), PIECE)]


def _event(payload: dict) -> str:
    return "data: " + json.dumps(payload) + "\n\n"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=status)
