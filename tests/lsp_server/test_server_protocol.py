"""Cancellation, bad input, UTF-16 positions, diagnostics, configuration and progress, over real stdio."""

from __future__ import annotations

import asyncio

import pytest
from lsp_helpers import debug_stats, edit, inline, instant_options, lsp_session, open_document, raw_request
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

SLOW = {"instantDelayMs": 150}  # 12 characters -> about 1.8 s of streaming


def _inline_params(uri: str, line: int, character: int) -> lsp.InlineCompletionParams:
    return lsp.InlineCompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri),
        position=lsp.Position(line, character),
        context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked),
    )


async def _wait_for(predicate, client, timeout: float = 10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        stats = await debug_stats(client)
        if predicate(stats) or asyncio.get_running_loop().time() > deadline:
            return stats
        await asyncio.sleep(0.05)


async def test_cancel_request_stops_the_engine_stream_and_sends_no_result(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path, **SLOW)) as client:
        open_document(client, uri, "def add(a, b):\n    \n")
        pending = client.protocol.send_request(
            lsp.TEXT_DOCUMENT_INLINE_COMPLETION, _inline_params(uri, 1, 4), msg_id="slow-1"
        )
        await _wait_for(lambda s: s.get("engine_streams", {}).get("opened") == 1, client)
        client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id="slow-1"))
        with pytest.raises(JsonRpcException) as caught:
            await asyncio.wait_for(asyncio.wrap_future(pending), 10)
        assert caught.value.code == lsp.LSPErrorCodes.RequestCancelled
        stats = await _wait_for(lambda s: s["engine_streams"]["closed_early"] == 1, client)
        assert stats["engine_streams"] == {"opened": 1, "finished": 0, "closed_early": 1}
        assert stats["cancelled"] == 1


async def test_a_newer_request_for_the_document_cancels_the_older_one(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path, **SLOW)) as client:
        open_document(client, uri, "def add(a, b):\n    \n")
        older = client.protocol.send_request(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, _inline_params(uri, 1, 4))
        await _wait_for(lambda s: s.get("engine_streams", {}).get("opened") == 1, client)
        edit(client, uri, 2, 1, 4, " ")  # the user typed something the suggestion does not start with
        newer = await inline(client, uri, 1, 5)
        with pytest.raises(JsonRpcException):
            await asyncio.wait_for(asyncio.wrap_future(older), 10)
        assert newer == ["return a + b"]
        stats = await debug_stats(client)
        assert stats["engine_streams"]["closed_early"] == 1 and stats["engine_streams"]["finished"] == 1


async def test_bad_input_gets_error_responses_and_the_server_stays_up(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path)) as client:
        with pytest.raises(JsonRpcException, match="not open"):
            await inline(client, "file:///nowhere/missing.py", 0, 0)
        open_document(client, uri, "x = 1\n")
        with pytest.raises(JsonRpcException, match="out of range"):
            await inline(client, uri, 40, 0)
        for method, params in [
            (lsp.TEXT_DOCUMENT_CODE_ACTION, {"textDocument": {"uri": uri}}),  # no range, no context
            (lsp.TEXT_DOCUMENT_COMPLETION, None),
            (lsp.TEXT_DOCUMENT_INLINE_COMPLETION, {"position": "here"}),
            (lsp.CODE_ACTION_RESOLVE, {"title": "Fix with MiMo", "data": {"something": "else"}}),
        ]:
            with pytest.raises(JsonRpcException) as caught:
                await raw_request(client, method, params)
            assert caught.value.code == -32602, method
        # still serving (on the empty last line: after "x = 1" the answer would not compile and is dropped)
        assert await inline(client, uri, 1, 0) == ["return a + b"]


async def test_utf16_positions_with_emoji_and_cjk(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path)) as client:
        line = 's = "😀中文" + ('  # the emoji is 2 UTF-16 units, each CJK character 1
        open_document(client, uri, line + "\n")
        first = await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        assert first.diagnostics, "the unclosed call is a syntax error"
        end = len(line.encode("utf-16-le")) // 2
        edit(client, uri, 2, 0, end, "1)")  # lands at the end of the line only if UTF-16 is honoured
        fixed = await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        assert list(fixed.diagnostics) == []
        open_document(client, uri, 'x = "😀"\n', version=3)
        # UTF-16 column 6 is inside the string, just after the emoji; read as code points it would be past the
        # closing quote, where the completion breaks the syntax and is dropped.
        assert await inline(client, uri, 0, 6) == ["return a + b"]


async def test_syntax_diagnostics_are_published_with_their_position(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, "def f(:\n    return 1\n")
        published = await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        assert published.uri == uri
        (diagnostic,) = published.diagnostics
        assert diagnostic.source == "mimo" and diagnostic.range.start.line == 0


async def test_configuration_change_disables_a_language_and_changes_the_engine(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, "def add(a, b):\n    \n")
        assert await inline(client, uri, 1, 4) == ["return a + b"]
        options = instant_options(tmp_path, text="return b + a")
        client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings={"mimo": options}))
        edit(client, uri, 2, 1, 4, " ")
        assert await inline(client, uri, 1, 5) == ["return b + a"]
        disabled = {**options, "languages": {"python": False}}
        client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=disabled))
        assert await inline(client, uri, 1, 5) == []


async def test_invalid_settings_are_shown_and_replaced_by_defaults(tmp_path, uri):
    options = instant_options(tmp_path)
    options["completion"]["maxLines"] = "many"
    async with lsp_session(options) as client:
        open_document(client, uri, "def add(a, b):\n    \n")
        assert await inline(client, uri, 1, 4) == ["return a + b"]
        assert any("completion.maxLines" in message.message for message in client.messages)


async def test_model_loading_reports_progress_with_a_fresh_token(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, "def add(a, b):\n    \n")
        await inline(client, uri, 1, 4)
        client.workspace_did_change_configuration(
            lsp.DidChangeConfigurationParams(settings=instant_options(tmp_path, text="return 0"))
        )
        for _ in range(100):
            if len(client.progress_reports) == 2 and all(len(r) == 2 for r in client.progress_reports.values()):
                break
            await asyncio.sleep(0.05)
        assert len(client.progress_reports) == 2  # one token per load
        for reports in client.progress_reports.values():
            assert [type(r).__name__ for r in reports] == ["WorkDoneProgressBegin", "WorkDoneProgressEnd"]
