"""A stand-in for an OpenAI-compatible server with a real model behind it, at our HTTP boundary: it streams
SSE the way vLLM and `mimo serve` do, and its "model" answers from a small table of known code (keyed by the
line before the gap), shaped as a chosen kind of model would shape it: an instruction model that chats
around its code block, one that thinks first, one that repeats the line or the code after the gap, one that
ignores the contract. It records every request body, so tests see what the client sent."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

GAP = "<FILL_HERE>"
# The missing code for the line before the gap: what a good model would write there.
KNOWN = {
    "    return ": "a + b",
    "def area(r):": "\n    return 3.14159 * r * r",
    "    total = ": "sum(values)",
    # A hostile answer: terminal escapes (ESC c resets the screen, CSI in its 8-bit form, a bell, a carriage
    # return that prints over the line, a right-to-left override) inside a string, so it passes every filter.
    "    banner = ": "'\x1bc\r\x9b2Jhi\x07\u202e'",
}
CONTINUATIONS = {"    return ": "a + b\n\n\ndef sub(a, b):\n    return a - b\n"}  # a base model runs on


def fake_openai(behaviour: str = "polite", api_key: str | None = None, prompt_mode: str | None = None) -> FastAPI:
    app = FastAPI()
    app.state.bodies = []

    @app.middleware("http")
    async def check_key(request: Request, call_next):
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            return JSONResponse({"error": {"message": "bad key", "code": "invalid_api_key"}}, status_code=401)
        return await call_next(request)

    @app.get("/v1/models")
    async def models() -> dict:
        card = {"id": "fake-instruct", "object": "model", "max_model_len": 8192}
        if prompt_mode:
            card["prompt_mode"] = prompt_mode
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> StreamingResponse:
        body = await request.json()
        app.state.bodies.append(body)
        reply = shaped_reply(behaviour, body["messages"][-1]["content"])
        return StreamingResponse(_events(reply, chat=True), media_type="text/event-stream")

    @app.post("/v1/completions")
    async def completions(request: Request) -> StreamingResponse:
        body = await request.json()
        app.state.bodies.append(body)
        prompt = body["prompt"]
        line_before = prompt[prompt.rfind("\n") + 1 :]
        return StreamingResponse(
            _events(CONTINUATIONS.get(line_before, ""), chat=False), media_type="text/event-stream"
        )

    return app


def shaped_reply(behaviour: str, user: str) -> str:
    """The reply of the kind of model ``behaviour`` names to a chat request holding one gap."""
    code = re.search(r"```[^\n]*\n(.*)\n```", user, re.S)
    assert code is not None and GAP in code[1], "the request does not show the code with the gap"
    before, after = code[1].split(GAP)
    line_before = before[before.rfind("\n") + 1 :]
    missing = KNOWN.get(line_before, "pass")
    next_lines = after.split("\n", 1)[1] if "\n" in after else ""
    if behaviour == "polite":
        return f"Sure! Here is the missing code:\n```python\n{missing}\n```\nIt adds the numbers."
    if behaviour == "thinking":
        return (
            f"<think>The gap follows `{line_before.strip()}`. ```python\nnot this\n```</think>```python\n{missing}\n```"
        )
    if behaviour == "echo_line":
        return f"```python\n{line_before}{missing}\n```"
    if behaviour == "echo_suffix":
        return f"```python\n{missing}\n{next_lines}```"
    if behaviour == "bad_syntax":
        return "```python\na +* b)\n```"
    if behaviour == "no_fence":
        return missing
    if behaviour == "gap_echo":
        return f"```python\n{line_before}{GAP}\n```"
    raise ValueError(behaviour)


def _events(text: str, chat: bool):
    """The text streamed a few characters at a time, then a finish reason, usage and [DONE]."""
    pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
    for piece in pieces:
        choice = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
        yield f"data: {json.dumps({'choices': [choice | {'finish_reason': None}]})}\n\n"
    last = {"index": 0, "delta": {}} if chat else {"index": 0, "text": ""}
    yield f"data: {json.dumps({'choices': [last | {'finish_reason': 'stop'}]})}\n\n"
    usage = {"prompt_tokens": 10, "completion_tokens": len(pieces)}
    yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Runs ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
