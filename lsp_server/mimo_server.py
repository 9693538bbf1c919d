"""The server's state and the glue between handlers and features: documents, settings, the engine, the
completion service (with one in-flight request per document: a newer one cancels the older, end to end),
diagnostics, fix-its and telemetry. Handlers in server.py call these methods and translate the results."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from engine.api import Engine
from lsp_server import context as ctx
from lsp_server import diagnostics, fixits, language_policy, safe_files
from lsp_server.completion import Completion, CompletionService
from lsp_server.documents import Document, DocumentStore, Pos
from lsp_server.engine_host import EngineHost
from lsp_server.review.editor import EditorReview, review_document
from lsp_server.settings import Settings, settings_from_options
from lsp_server.telemetry import Telemetry

log = logging.getLogger(__name__)

ACCEPT_COMMAND = "mimo.acceptCompletion"
STATUS_NOTIFICATION = "mimo/status"
DIAGNOSTICS_DELAY_S = 0.2
_IMPORT_CACHE_LIMIT = 64


class MimoServer(LanguageServer):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.documents = DocumentStore()
        self.settings = Settings()
        self.engine_host = EngineHost(
            self.settings.engine, self._on_engine_loading, self._on_engine_error, self._on_engine_fallback
        )
        self.completions = CompletionService(self.settings.completion)
        self.telemetry: Telemetry | None = None
        self._inflight: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self._diagnostic_tasks: dict[str, asyncio.Task[None]] = {}
        self._with_diagnostics: set[str] = set()  # documents whose last published diagnostics were not empty
        self._problems: list[str] = []
        self._progress_token: str | None = None
        self._progress_lock = asyncio.Lock()  # begin and end reach the client in order
        # (the importer's repository, the imported path) -> (mtime, text): keyed by the repository too, as a
        # file one repository may read can lie outside another (`#include "../other/x.h"`).
        self._imports: dict[tuple[Path, str], tuple[float, str]] = {}
        self._reviews: dict[str, EditorReview] = {}  # uri -> the last "review changes" result
        self._told_languages: set[str] = set()  # languages the editor was told the model does not complete

    # -- settings and lifecycle ------------------------------------------------------------------------------
    def apply_options(self, options: Any) -> None:
        self.settings, self._problems = settings_from_options(options)
        self.engine_host.configure(self.settings.engine)
        self.completions.configure(self.settings.completion)
        self._open_telemetry()

    def start(self) -> None:
        for problem in self._problems:
            self.window_show_message(lsp.ShowMessageParams(lsp.MessageType.Warning, f"MiMo settings: {problem}"))
        self.engine_host.start()

    async def stop(self) -> None:
        await self.engine_host.close()
        if self.telemetry is not None:
            self.telemetry.close()

    async def reconfigure(self, options: Any) -> None:
        if options is None:
            return
        before = (self.settings.engine, self.settings.completion)
        self.apply_options(options)
        if (self.settings.engine, self.settings.completion) != before:
            self.completions.forget()
        self.start()
        await self.engine_host.reload(self.settings.engine)
        for uri in list(self._diagnostic_tasks):
            self.schedule_diagnostics(uri)

    def _open_telemetry(self) -> None:
        if self.telemetry is not None:
            self.telemetry.close()
        self.telemetry = None
        if self.settings.telemetry:
            try:
                self.telemetry = Telemetry(self.settings.telemetry_path)
            except Exception as exc:  # a read-only home must not stop completions
                self._problems.append(f"telemetry disabled: cannot open its database ({exc})")

    # -- engine state shown to the person ----------------------------------------------------------------------
    def _on_engine_loading(self, loading: bool) -> None:
        asyncio.ensure_future(self._report_loading(loading))

    async def _report_loading(self, loading: bool) -> None:
        model = self.engine_host.settings.model
        self._notify_status("loading" if loading else self._engine_state(), model)
        if not self._client_has_progress():
            return
        async with self._progress_lock:
            await self._progress(loading, model)

    async def _progress(self, loading: bool, model: str) -> None:
        if loading:
            self._end_progress()  # a reload may replace a load still in progress
            self._progress_token = token = uuid.uuid4().hex  # a fresh token each time (pygls rejects reuse)
            try:
                await self.work_done_progress.create_async(token)
            except Exception as exc:
                log.info("client refused a progress token: %s", exc)
                self._progress_token = None
                return
            self.work_done_progress.begin(token, lsp.WorkDoneProgressBegin(title=f"MiMo: loading {model}"))
        else:
            self._end_progress()

    def _end_progress(self) -> None:
        if self._progress_token is not None:
            self.work_done_progress.end(self._progress_token, lsp.WorkDoneProgressEnd(message="MiMo: ready"))
            self._progress_token = None

    def _engine_state(self) -> str:
        engine = self.engine_host.current()
        if engine is None:
            return "error" if self.engine_host.error else "loading"
        return "fallback" if engine.info().fallback_reason else "ready"

    def _on_engine_error(self, message: str) -> None:
        self._notify_status("error", self.engine_host.settings.model, message)
        self.window_show_message(lsp.ShowMessageParams(lsp.MessageType.Error, f"MiMo: {message}"))

    def _on_engine_fallback(self, reason: str | None) -> None:
        """The router switched to the local model (reason) or back to the remote one (None)."""
        if reason:
            self.window_show_message(lsp.ShowMessageParams(lsp.MessageType.Warning, f"MiMo: {reason}"))
        self._notify_status("fallback" if reason else "ready", self.engine_host.settings.model, reason)

    def _notify_status(self, state: str, model: str, message: str | None = None) -> None:
        """`mimo/status`: the editors show the engine's state (loading, ready, fallback, error) in a status bar."""
        params = {"state": state, "model": model, "message": message}
        self.protocol.notify(STATUS_NOTIFICATION, params)

    def _client_has_progress(self) -> bool:
        window = self.client_capabilities.window
        return bool(window and window.work_done_progress)

    # -- completions --------------------------------------------------------------------------------------------
    def locate(self, uri: str, position: lsp.Position) -> tuple[Document, int]:
        document = self.documents.get(uri)
        return document, document.offset_at(Pos(position.line, position.character))

    async def complete(self, document: Document, offset: int, invoked: bool, kind: str) -> Completion | None:
        """One completion; a newer request for the same document and kind cancels this one. Only in the languages
        the model was trained on, unless the settings say otherwise (language_policy)."""
        language_id = document.language_id or document.language or ""
        if language_policy.turned_off(language_id, self.settings.languages):
            return None

        async def engine_for_language() -> Engine | None:
            engine = await self.engine_host.get()
            if engine is None or language_policy.completes_in(language_id, self.settings.languages, engine.info()):
                return engine
            if language_id not in self._told_languages:  # say once why this language gets nothing
                self._told_languages.add(language_id)
                message = language_policy.why_not(language_id, engine.info())
                self.window_show_message(lsp.ShowMessageParams(lsp.MessageType.Info, message))
            return None

        key = (document.uri, kind)
        previous, current = self._inflight.get(key), asyncio.current_task()
        if previous is not None and previous is not current:
            previous.cancel()  # the editor moved on: stop its engine stream now
        if current is not None:
            self._inflight[key] = current
        try:
            result = await self.completions.complete(
                engine_for_language, document, offset, self.sources_for(document), invoked
            )
        finally:
            if self._inflight.get(key) is current:
                del self._inflight[key]
        if result is not None and self.telemetry is not None:
            self.telemetry.shown(
                result.id, document.uri, document.language or "text", kind, result.text, result.latency_ms,
                result.from_cache,
            )  # fmt: skip
        return result

    def accept(self, completion_id: str) -> bool:
        return self.telemetry.accepted(completion_id) if self.telemetry is not None else False

    @staticmethod
    def word_start(document: Document, offset: int) -> int:
        start = offset
        while start > 0 and (document.text[start - 1].isalnum() or document.text[start - 1] == "_"):
            start -= 1
        return start

    def sources_for(self, document: Document) -> list[ctx.Source]:
        """Other open documents, then the files this one imports (read from disk, cached by mtime)."""
        sources = {doc.path: ctx.Source(doc.path, doc.text) for doc in self.documents.others(document.uri)}
        for path in ctx.import_candidates(document.path, document.text, document.language):
            if path not in sources and path != document.path:
                text = self._read_import(path, document.path)
                if text is not None:
                    sources[path] = ctx.Source(path, text)
        return list(sources.values())

    def _read_import(self, path: str, importer: str) -> str | None:
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return None
        key = (safe_files.import_root(importer), path)
        cached = self._imports.get(key)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        text = safe_files.read_import(importer, path)  # inside the importer's repository, regular files only
        if text is None:
            return None
        if len(self._imports) >= _IMPORT_CACHE_LIMIT:
            self._imports.pop(next(iter(self._imports)))
        self._imports[key] = (mtime, text)
        return text

    # -- diagnostics ----------------------------------------------------------------------------------------------
    def schedule_diagnostics(self, uri: str) -> None:
        """Publishes our syntax diagnostics shortly after the typing stops (one pending task per document)."""
        pending = self._diagnostic_tasks.get(uri)
        if pending is not None:
            pending.cancel()
        self._diagnostic_tasks[uri] = asyncio.ensure_future(self._publish_diagnostics(uri))

    async def _publish_diagnostics(self, uri: str) -> None:
        await asyncio.sleep(DIAGNOSTICS_DELAY_S)
        try:
            document = self.documents.get(uri)
        except KeyError:
            return
        document.refresh_tree()  # while typing pauses, so completions find their local regions in a recent tree
        found = diagnostics.syntax_diagnostics(document) if self.settings.diagnostics else []
        review = self._reviews.get(uri)
        found += review.diagnostics if review is not None else []
        if not found and uri not in self._with_diagnostics and not self.settings.diagnostics:
            return  # nothing to show and nothing to clear
        self._with_diagnostics.discard(uri)
        if found:
            self._with_diagnostics.add(uri)
        params = lsp.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=document.version)
        self.text_document_publish_diagnostics(params)

    def clear_diagnostics(self, uri: str) -> None:
        self._reviews.pop(uri, None)
        pending = self._diagnostic_tasks.pop(uri, None)
        if pending is not None:
            pending.cancel()
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    # -- fix-its --------------------------------------------------------------------------------------------------
    def fix_requests(
        self, document: Document, area: lsp.Range, client_diagnostics: list[lsp.Diagnostic]
    ) -> list[fixits.FixRequest]:
        own = diagnostics.syntax_diagnostics(document) if document.language else []
        return fixits.requests_for(document, area, [*client_diagnostics, *own])

    def client_resolves_edits(self) -> bool:
        text_document = self.client_capabilities.text_document
        code_action = text_document.code_action if text_document else None
        support = code_action.resolve_support if code_action else None
        return bool(support and "edit" in support.properties)

    @staticmethod
    def unresolved_action(request: fixits.FixRequest) -> lsp.CodeAction:
        return lsp.CodeAction(
            title=request.title, kind=lsp.CodeActionKind.QuickFix, diagnostics=[request.diagnostic],
            data=request.to_data(),
        )  # fmt: skip

    async def resolve_fix(self, request: fixits.FixRequest) -> lsp.CodeAction:
        action = self.unresolved_action(request)
        try:
            document = self.documents.get(request.uri)
        except KeyError:
            action.disabled = lsp.CodeActionDisabled(reason="the document was closed")
            return action
        engine = await self.engine_host.get()
        outcome = await fixits.compute_fix(engine, document, request) if engine is not None else None
        if outcome is None or outcome.edit is None:
            reason = outcome.reason if outcome is not None else "the model is not available"
            action.disabled = lsp.CodeActionDisabled(reason=f"MiMo found no checked fix: {reason}")
            return action
        start, end = document.position_at(outcome.edit.start), document.position_at(outcome.edit.end)
        edit = lsp.TextEdit(range=_range(start, end), new_text=outcome.edit.new_text)
        action.edit = lsp.WorkspaceEdit(changes={request.uri: [edit]})
        return action

    # -- review ---------------------------------------------------------------------------------------------------
    async def review(self, uri: str) -> EditorReview:
        """Reviews the document's uncommitted changes (buffer vs HEAD); findings are published with the syntax
        diagnostics and their checked suggestions become quick fixes, until the next review of the document.

        The built-in nano model only runs the deterministic checks: a model review needs a larger model."""
        document = self.documents.get(uri)
        local_nano = self.settings.engine.url is None and self.settings.engine.model == "nano"
        engine = None if local_nano else await self.engine_host.get()
        result = await review_document(Path(document.path), document.text, engine, uri=uri)
        if local_nano:
            note = "checks only: model reviews need a larger model (set engine.url, e.g. a MiMo-7B-RL server)"
            result = replace(result, notes=(*result.notes, note))
        self._reviews[uri] = result
        self.schedule_diagnostics(uri)
        return result

    def review_actions(self, uri: str, area: lsp.Range) -> list[lsp.CodeAction]:
        review = self._reviews.get(uri)
        if review is None:
            return []
        return [action for action in review.code_actions if _overlaps(action.diagnostics[0].range, area)]

    # -- introspection ---------------------------------------------------------------------------------------------
    def engine_status(self) -> dict[str, Any]:
        engine = self.engine_host.current()
        info = engine.info() if engine is not None else None
        return {
            "state": self._engine_state(),
            "model": self.engine_host.settings.model,
            "message": self.engine_host.error or (info.fallback_reason if info else None),
            "backend": info.backend if info else None,
            "fallback_reason": info.fallback_reason if info else None,
        }

    def debug_stats(self) -> dict[str, Any]:
        engine = self.engine_host.current()
        counters = getattr(engine, "counters", None)
        stats: dict[str, Any] = dict(vars(self.completions.counters))
        stats["engine_state"] = self._engine_state()
        stats["cpu_s"] = time.process_time()  # the server's CPU time: what a request costs, whatever the load
        stats["engine_error"] = self.engine_host.error
        if counters is not None:
            stats["engine_streams"] = dict(vars(counters))
        return stats


def _range(start: Pos, end: Pos) -> lsp.Range:
    return lsp.Range(lsp.Position(start.line, start.character), lsp.Position(end.line, end.character))


def _overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    def key(position: lsp.Position) -> tuple[int, int]:
        return position.line, position.character

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)
