"""The protocol edge: a pygls LanguageServer whose handlers only translate between LSP and the plain functions
of completion.py, fixits.py, diagnostics.py and telemetry.py. State lives in ``MimoServer`` (mimo_server.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams

from lsp_server import __version__
from lsp_server.documents import Pos, PositionError, UnknownDocument
from lsp_server.fixits import FixRequest
from lsp_server.mimo_server import ACCEPT_COMMAND, MimoServer
from lsp_server.protocol import AnsweringProtocol

log = logging.getLogger(__name__)

SERVER = MimoServer("mimo-lsp", __version__, protocol_cls=AnsweringProtocol)


def _invalid(exc: Exception) -> JsonRpcInvalidParams:
    return JsonRpcInvalidParams(str(exc))


@SERVER.feature(lsp.INITIALIZE)
def initialize(ls: MimoServer, params: lsp.InitializeParams) -> None:
    ls.apply_options(params.initialization_options)


@SERVER.feature(lsp.INITIALIZED)
def initialized(ls: MimoServer, params: lsp.InitializedParams) -> None:
    ls.start()


@SERVER.feature(lsp.SHUTDOWN)
async def shutdown(ls: MimoServer, params: None) -> None:
    await ls.stop()


@SERVER.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: MimoServer, params: lsp.DidOpenTextDocumentParams) -> None:
    item = params.text_document
    ls.documents.open(item.uri, item.language_id, item.text, item.version)
    ls.schedule_diagnostics(item.uri)


@SERVER.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: MimoServer, params: lsp.DidChangeTextDocumentParams) -> None:
    try:
        document = ls.documents.get(params.text_document.uri)
        for change in params.content_changes:
            if isinstance(change, lsp.TextDocumentContentChangePartial):
                start, end = change.range.start, change.range.end
                document.apply_change(change.text, Pos(start.line, start.character), Pos(end.line, end.character))
            else:
                document.apply_change(change.text)
        document.version = params.text_document.version
    except (UnknownDocument, PositionError) as exc:
        log.warning("ignored a change: %s", exc)  # a notification has no answer; the next didOpen resyncs
        return
    ls.schedule_diagnostics(document.uri)


@SERVER.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: MimoServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.documents.close(params.text_document.uri)
    ls.clear_diagnostics(params.text_document.uri)


@SERVER.feature(lsp.TEXT_DOCUMENT_INLINE_COMPLETION, lsp.InlineCompletionOptions())
async def inline_completion(ls: MimoServer, params: lsp.InlineCompletionParams) -> lsp.InlineCompletionList:
    try:
        document, offset = ls.locate(params.text_document.uri, params.position)
    except (UnknownDocument, PositionError) as exc:
        raise _invalid(exc) from None
    invoked = params.context.trigger_kind == lsp.InlineCompletionTriggerKind.Invoked
    completion = await ls.complete(document, offset, invoked, kind="inline")
    if completion is None:
        return lsp.InlineCompletionList(items=[])
    at = params.position
    item = lsp.InlineCompletionItem(
        insert_text=completion.text,
        range=lsp.Range(at, at),
        command=lsp.Command(title="MiMo: accepted", command=ACCEPT_COMMAND, arguments=[completion.id]),
    )
    return lsp.InlineCompletionList(items=[item])


@SERVER.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[".", "("]))
async def completion(ls: MimoServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    try:
        document, offset = ls.locate(params.text_document.uri, params.position)
    except (UnknownDocument, PositionError) as exc:
        raise _invalid(exc) from None
    invoked = params.context is None or params.context.trigger_kind == lsp.CompletionTriggerKind.Invoked
    result = await ls.complete(document, offset, invoked, kind="popup")
    if result is None:
        return lsp.CompletionList(is_incomplete=True, items=[])
    word_start = ls.word_start(document, offset)
    typed = document.text[word_start:offset]
    start = document.position_at(word_start)
    item = lsp.CompletionItem(
        label=(typed + result.text).split("\n")[0].strip()[:60] or "MiMo",
        kind=lsp.CompletionItemKind.Text,
        detail="MiMo",
        filter_text=typed + result.text,
        sort_text="0",
        text_edit=lsp.TextEdit(
            lsp.Range(lsp.Position(start.line, start.character), params.position), typed + result.text
        ),
        insert_text_format=lsp.InsertTextFormat.PlainText,
        command=lsp.Command(title="MiMo: accepted", command=ACCEPT_COMMAND, arguments=[result.id]),
    )
    return lsp.CompletionList(is_incomplete=True, items=[item])


@SERVER.feature(
    lsp.TEXT_DOCUMENT_CODE_ACTION,
    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix], resolve_provider=True),
)
async def code_action(ls: MimoServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    try:
        document = ls.documents.get(params.text_document.uri)
    except UnknownDocument as exc:
        raise _invalid(exc) from None
    requests = ls.fix_requests(document, params.range, params.context.diagnostics)
    review_fixes = ls.review_actions(document.uri, params.range)  # already checked when the review ran
    if ls.client_resolves_edits():
        return [*(ls.unresolved_action(request) for request in requests), *review_fixes]
    actions = [await ls.resolve_fix(request) for request in requests]  # no resolve support: check them now
    return [*(action for action in actions if action.edit is not None), *review_fixes]


@SERVER.feature(lsp.CODE_ACTION_RESOLVE)
async def code_action_resolve(ls: MimoServer, params: lsp.CodeAction) -> lsp.CodeAction:
    try:
        request = FixRequest.from_data(params.data)
    except (TypeError, KeyError, ValueError) as exc:
        raise _invalid(ValueError(f"codeAction/resolve: the action's data is not a MiMo fix ({exc})")) from None
    return await ls.resolve_fix(request)


@SERVER.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def did_change_configuration(ls: MimoServer, params: lsp.DidChangeConfigurationParams) -> None:
    await ls.reconfigure(params.settings)


@SERVER.feature("mimo/debugStats")
def debug_stats(ls: MimoServer, params: Any) -> dict[str, Any]:
    """Counters the tests and `mimo bench lsp` read: requests, engine calls, cache hits, cancelled streams."""
    return ls.debug_stats()


def accept_completion(ls: MimoServer, *arguments: Any) -> bool:
    return ls.accept(str(arguments[0])) if arguments else False


def engine_status(ls: MimoServer, *arguments: Any) -> dict[str, Any]:
    """The engine's state, as in the last `mimo/status` notification (for health checks)."""
    return ls.engine_status()


async def review_changes(ls: MimoServer, *arguments: Any) -> dict[str, Any]:
    """ "MiMo: review changes" for the document whose URI is the first argument."""
    if not arguments or not isinstance(arguments[0], str):
        raise JsonRpcInvalidParams("mimo.review needs the document's URI as its first argument")
    try:
        result = await ls.review(arguments[0])
    except UnknownDocument as exc:
        raise _invalid(exc) from None
    return {"findings": len(result.diagnostics), "model": result.model, "notes": list(result.notes)}


# workspace/executeCommand: command name -> function(ls, *arguments). Extend this table to add a command.
COMMANDS: dict[str, Callable[..., Any]] = {
    ACCEPT_COMMAND: accept_completion,
    "mimo.status": engine_status,
    "mimo.review": review_changes,
}


def register_commands(commands: dict[str, Callable[..., Any]]) -> None:
    for name, function in commands.items():
        if name not in SERVER.protocol.fm.commands:
            SERVER.command(name)(function)


register_commands(COMMANDS)
