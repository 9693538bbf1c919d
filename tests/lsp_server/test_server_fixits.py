"""Fix with MiMo: listed at once, computed on resolve, offered only when the edited document checks out."""

from __future__ import annotations

from lsp_helpers import instant_options, lsp_session, open_document
from lsprotocol import types as lsp

BROKEN = "def f(x):\n    return x +\n\nprint(f(1))\n"


async def _actions(client, uri: str) -> list[lsp.CodeAction]:
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)  # the server has parsed it
    return await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri),
            range=lsp.Range(lsp.Position(1, 0), lsp.Position(1, 0)),
            context=lsp.CodeActionContext(diagnostics=[]),
        )
    )


async def test_fix_is_listed_without_an_edit_and_resolved_into_a_minimal_one(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path, text="return x + 1\n")) as client:
        open_document(client, uri, BROKEN)
        (action,) = await _actions(client, uri)
        assert action.title.startswith("Fix with MiMo: SyntaxError") and action.edit is None
        resolved = await client.code_action_resolve_async(action)
        (text_edit,) = resolved.edit.changes[uri]
        assert text_edit.range == lsp.Range(lsp.Position(1, 14), lsp.Position(1, 14))
        assert text_edit.new_text == " 1"
        assert resolved.disabled is None


async def test_a_fix_that_does_not_parse_is_not_offered(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path, text="    return (x +\n")) as client:
        open_document(client, uri, BROKEN)
        (action,) = await _actions(client, uri)
        resolved = await client.code_action_resolve_async(action)
        assert resolved.edit is None
        assert "syntax" in resolved.disabled.reason


async def test_without_resolve_support_only_checked_fixes_are_listed(tmp_path, uri):
    plain = lsp.ClientCapabilities()  # no codeAction/resolve: the server must check before listing
    async with lsp_session(instant_options(tmp_path, text="    return (x +\n"), plain) as client:
        open_document(client, uri, BROKEN)
        assert list(await _actions(client, uri)) == []
    async with lsp_session(instant_options(tmp_path, text="return x * 2\n"), plain) as client:
        open_document(client, uri, BROKEN)
        (action,) = await _actions(client, uri)
        (text_edit,) = action.edit.changes[uri]
        assert text_edit.new_text.strip() == "* 2"


async def test_a_client_diagnostic_gets_a_fix_too(tmp_path, uri):
    text = "def area(r):\n    return 3.14 * rr * r\n"
    async with lsp_session(instant_options(tmp_path, text="return 3.14 * r * r\n")) as client:
        open_document(client, uri, text)
        await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        undefined = lsp.Diagnostic(
            range=lsp.Range(lsp.Position(1, 18), lsp.Position(1, 20)), message='"rr" is not defined', source="pyright"
        )
        (action,) = await client.text_document_code_action_async(
            lsp.CodeActionParams(
                text_document=lsp.TextDocumentIdentifier(uri),
                range=undefined.range,
                context=lsp.CodeActionContext(diagnostics=[undefined]),
            )
        )
        resolved = await client.code_action_resolve_async(action)
        (text_edit,) = resolved.edit.changes[uri]
        assert (text_edit.range.start.line, text_edit.range.start.character, text_edit.new_text) == (1, 19, "")
