"""API-key authentication for `mimo serve`: an ASGI middleware in front of every route but /health.

A request must carry `Authorization: Bearer <key>` (what OpenAI's clients, vLLM's and ours send). Without it, or
with another key, the answer is 401 in OpenAI's error shape, before the body is read. /health stays open so
load balancers and `:checkhealth` can probe without the secret.

The comparison is constant-time over SHA-256 digests of both keys, so neither the key's characters nor its
length can be learnt from response times. The key itself is never logged, printed or echoed in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from engine.remote import API_KEY_ENV

__all__ = ["API_KEY_ENV", "ApiKey", "ApiKeyMiddleware", "bearer_token"]

OPEN_PATHS = frozenset({"/health"})
_UNAUTHORIZED = json.dumps(
    {
        "error": {
            "message": "missing or incorrect API key: send it as 'Authorization: Bearer <key>'",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
).encode()


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def bearer_token(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The token of the request's `Authorization: Bearer ...` header (the scheme is case-insensitive)."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else None
    return None


class ApiKey:
    """The server's key, hidden from every repr (Starlette keeps middleware options in reprs)."""

    def __init__(self, key: str):
        if not key:
            raise ValueError("the API key must not be empty")
        self.digest = _digest(key.encode())

    def __repr__(self) -> str:
        return "ApiKey(<hidden>)"


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, api_key: ApiKey):
        self.app = app
        self._expected = api_key.digest

    def allows(self, headers: list[tuple[bytes, bytes]]) -> bool:
        token = bearer_token(headers)
        return hmac.compare_digest(_digest(token or b""), self._expected) and token is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self.allows(scope["headers"]):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_UNAUTHORIZED)).encode()),
                    (b"www-authenticate", b'Bearer realm="mimo serve"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _UNAUTHORIZED})
