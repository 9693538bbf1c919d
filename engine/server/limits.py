"""A bound on request bodies, enforced before anything parses them: 413 in OpenAI's error shape.

Parsing JSON runs on the event loop, so without a bound one client's 100 MB body would stall every other
request (and /health) while it is read and decoded. A body that declares a larger Content-Length is refused
before it is read; one sent in chunks is counted as it arrives and refused once it passes the bound.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A 32k-token prompt is about 0.1 MB of text, and a 128k one under 1 MB; the rest is room for JSON escapes.
DEFAULT_MAX_BODY_BYTES = 8 * 2**20


def too_large_message(max_bytes: int) -> str:
    return f"the request body is larger than this server's limit of {max_bytes} bytes; send a shorter prompt"


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.max_bytes:
            await _send_too_large(send, self.max_bytes)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:  # the route's error handler answers it
                    raise HTTPException(413, too_large_message(self.max_bytes))
            return message

        await self.app(scope, counted, send)


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # the server (h11) refuses a malformed length before we see it
    return 0


async def _send_too_large(send: Send, max_bytes: int) -> None:
    body = json.dumps(
        {
            "error": {
                "message": too_large_message(max_bytes),
                "type": "invalid_request_error",
                "param": None,
                "code": "request_too_large",
            }
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
