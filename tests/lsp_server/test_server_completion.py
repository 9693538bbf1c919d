"""Inline and popup completions through the real server process, with the instant engine (a fixed answer)."""

from __future__ import annotations

from lsp_helpers import debug_stats, edit, inline, instant_options, lsp_session, open_document
from lsprotocol import types as lsp


async def test_capabilities_advertise_inline_completion_and_friends(tmp_path):
    async with lsp_session(instant_options(tmp_path)) as client:
        capabilities = client.initialize_result.capabilities
        assert capabilities.inline_completion_provider is not None
        assert capabilities.completion_provider is not None
        assert capabilities.code_action_provider.resolve_provider is True
        assert "mimo.acceptCompletion" in capabilities.execute_command_provider.commands


async def test_inline_completion_in_an_empty_function_body(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, "def add(a, b):\n    \n")
        assert await inline(client, uri, 1, 4) == ["return a + b"]


async def test_typing_into_a_suggestion_reuses_it_without_a_model_call(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, "def add(a, b):\n    \n")
        assert await inline(client, uri, 1, 4) == ["return a + b"]
        edit(client, uri, 2, 1, 4, "ret")
        assert await inline(client, uri, 1, 7) == ["urn a + b"]
        stats = await debug_stats(client)
        assert stats["engine_calls"] == 1 and stats["cache_hits"] == 1


async def test_popup_completion_item_inserts_the_suggestion(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, "def add(a, b):\n    \n")
        result = await client.text_document_completion_async(
            lsp.CompletionParams(text_document=lsp.TextDocumentIdentifier(uri), position=lsp.Position(1, 4))
        )
        (item,) = result.items
        assert item.text_edit.new_text == "return a + b"
        assert item.command.command == "mimo.acceptCompletion"


async def test_full_document_sync_replaces_the_text(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, "x = 1\n")
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text="def add(a, b):\n    \n")],
            )
        )
        assert await inline(client, uri, 1, 4) == ["return a + b"]


async def test_status_command_reports_the_engine_state(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, "x = 1\n")
        await inline(client, uri, 0, 5)  # the engine has loaded once this answers
        status = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(command="mimo.status"))
        assert (status["state"], status["backend"], status["fallback_reason"]) == ("ready", "instant", None)


async def test_new_engine_settings_drop_the_cached_completions(tmp_path, uri):
    """A completion cached from the previous engine (a fallback's, before an API key brought the real server
    back) must not be served once the settings name another engine."""
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, "def add(a, b):\n    \n")
        assert await inline(client, uri, 1, 4) == ["return a + b"]
        options = instant_options(tmp_path, text="return a * b")
        client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=options))
        assert await inline(client, uri, 1, 4) == ["return a * b"]
        client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=options))  # unchanged
        assert await inline(client, uri, 1, 4) == ["return a * b"]
        stats = await debug_stats(client)
        assert (stats["engine_calls"], stats["cache_hits"]) == (2, 1)
