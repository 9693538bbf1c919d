"""Helpers: drive the real language server process (`python -m lsp_server`) over stdio with pytest-lsp's client."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

REPO = Path(__file__).resolve().parents[2]


def instant_options(tmp_path: Path, text: str = "return a + b", **engine: Any) -> dict[str, Any]:
    """Settings for the instant engine (a fixed answer) with telemetry in a temporary folder."""
    return {
        "engine": {"backend": "instant", "instantText": text, **engine},
        "completion": {"debounceMs": 0, "maxDebounceMs": 0},
        "telemetry": {"enabled": True, "path": str(tmp_path / "telemetry.sqlite")},
    }


@asynccontextmanager
async def lsp_session(
    options: dict[str, Any] | None, capabilities: lsp.ClientCapabilities | None = None
) -> AsyncIterator[LanguageClient]:
    client = make_test_lsp_client()
    client.statuses = []  # the server's mimo/status notifications, in order

    @client.feature("mimo/status")
    def _status(params: Any) -> None:
        client.statuses.append(_plain(params))

    await client.start_io(sys.executable, "-m", "lsp_server", cwd=str(REPO))
    try:
        client.initialize_result = await client.initialize_session(
            lsp.InitializeParams(
                capabilities=capabilities or client_capabilities("visual-studio-code"),
                initialization_options=options,
                root_uri=REPO.as_uri(),
            )
        )
        yield client
        await asyncio.wait_for(client.shutdown_session(), 30)
    finally:
        server = client._server
        if server is not None and server.returncode is None:
            server.kill()  # after a failed test: stop() alone would wait for an exit that never comes
        await client.stop()


def open_document(client: LanguageClient, uri: str, text: str, language: str = "python", version: int = 1) -> None:
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri=uri, language_id=language, version=version, text=text))
    )


def edit(client: LanguageClient, uri: str, version: int, line: int, character: int, text: str) -> None:
    """Inserts text at a position (an incremental change)."""
    at = lsp.Position(line, character)
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangePartial(range=lsp.Range(at, at), text=text)],
        )
    )


async def inline(client: LanguageClient, uri: str, line: int, character: int, invoked: bool = True) -> list[str]:
    kind = lsp.InlineCompletionTriggerKind.Invoked if invoked else lsp.InlineCompletionTriggerKind.Automatic
    result = await client.text_document_inline_completion_async(
        lsp.InlineCompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri),
            position=lsp.Position(line, character),
            context=lsp.InlineCompletionContext(trigger_kind=kind),
        )
    )
    items = result.items if isinstance(result, lsp.InlineCompletionList) else (result or [])
    return [item.insert_text for item in items]


async def debug_stats(client: LanguageClient) -> dict[str, Any]:
    """The server's counters (pygls hands an unknown method's result over as named tuples)."""
    return _plain(await client.protocol.send_request_async("mimo/debugStats", None))


async def raw_request(client: LanguageClient, method: str, params: Any) -> Any:
    """Sends params exactly as given (the client would refuse to serialize ill-typed ones) and awaits the answer."""
    msg_id = uuid.uuid4().hex
    future: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = future
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return await asyncio.wait_for(asyncio.wrap_future(future), 10)


def _plain(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return {key: _plain(item) for key, item in value._asdict().items()}
    return value
