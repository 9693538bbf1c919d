"""Checked fix-its: for a diagnostic (from any source), ask the model for replacement lines and turn them into a
minimal edit, offered only if the edited document adds no syntax errors, has none in the edited lines and, for
our own syntax diagnostics, no longer has the problem.

With a FIM model the diagnostic's lines are deleted and infilled; with a chat-only model it is asked for the
corrected lines in a fenced block. Listing is instant (``requests_for``); ``compute_fix`` runs on resolve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lsprotocol import types as lsp
from lsprotocol.converters import get_converter

from engine.api import Engine, FimParts, GenerationRequest, Message, SamplingParams, collect
from lsp_server import syntax
from lsp_server.context import comment_prefix
from lsp_server.diagnostics import is_ours
from lsp_server.documents import Document
from lsp_server.postprocess.stop_sequences import STOP_TOKENS

_CONVERTER = get_converter()
_CONTEXT_LINES = 40
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
_ATTEMPTS = (SamplingParams(temperature=0.0), SamplingParams(temperature=0.6, seed=1))


@dataclass(frozen=True)
class FixRequest:
    uri: str
    diagnostic: lsp.Diagnostic
    first_line: int
    last_line: int  # inclusive

    @property
    def title(self) -> str:
        return f"Fix with MiMo: {self.diagnostic.message.splitlines()[0][:60]}"

    def to_data(self) -> dict[str, Any]:
        return {"mimo": "fix", "uri": self.uri, "diagnostic": _CONVERTER.unstructure(self.diagnostic)}

    @classmethod
    def from_data(cls, data: Any) -> FixRequest:
        if not isinstance(data, dict) or data.get("mimo") != "fix":
            raise ValueError("missing the 'mimo': 'fix' marker")
        return request_for(str(data["uri"]), _CONVERTER.structure(data["diagnostic"], lsp.Diagnostic))


@dataclass(frozen=True)
class SpanEdit:
    start: int  # code point offsets into the document
    end: int
    new_text: str


@dataclass(frozen=True)
class FixOutcome:
    edit: SpanEdit | None
    reason: str = ""


def request_for(uri: str, diagnostic: lsp.Diagnostic) -> FixRequest:
    start, end = diagnostic.range.start, diagnostic.range.end
    last = end.line - 1 if end.character == 0 and end.line > start.line else end.line
    return FixRequest(uri, diagnostic, start.line, max(start.line, last))


def requests_for(document: Document, area: lsp.Range, diagnostics: list[lsp.Diagnostic]) -> list[FixRequest]:
    """One request per distinct diagnostic touching the area's lines."""
    seen, requests = set(), []
    for diagnostic in diagnostics:
        request = request_for(document.uri, diagnostic)
        key = (request.first_line, request.last_line, diagnostic.message)
        if key in seen or request.last_line < area.start.line or request.first_line > area.end.line:
            continue
        seen.add(key)
        requests.append(request)
    return requests


async def compute_fix(engine: Engine, document: Document, request: FixRequest) -> FixOutcome:
    if document.language is None:
        return FixOutcome(None, "no grammar to check a fix in this language")
    if request.last_line >= document.line_count:
        return FixOutcome(None, "the diagnostic is outside the document")
    start = document.offset_at_row(request.first_line)
    after_last = request.last_line + 1
    end = document.offset_at_row(after_last) if after_last < document.line_count else len(document.text)
    reason = "the model's answers did not parse"
    for sampling in _ATTEMPTS:
        replacement = await _ask(engine, document, request, start, end, sampling)
        if replacement is None:
            continue
        verdict = check_fix(document, request, start, end, replacement)
        if verdict is None:
            return FixOutcome(minimal_edit(document.text, start, end, replacement))
        reason = verdict
    return FixOutcome(None, reason)


async def _ask(
    engine: Engine, document: Document, request: FixRequest, start: int, end: int, sampling: SamplingParams
) -> str | None:
    lines = request.last_line - request.first_line + 1
    sampling = SamplingParams(
        max_tokens=48 * lines + 32, temperature=sampling.temperature, seed=sampling.seed, stop=STOP_TOKENS
    )
    if engine.info().fim_template is not None:
        prefix = "".join(document.text[:start].splitlines(keepends=True)[-_CONTEXT_LINES:])
        suffix = "".join(document.text[end:].splitlines(keepends=True)[:_CONTEXT_LINES])
        header = f"{comment_prefix(document.language)} Path: {document.path}\n"
        result = await collect(engine, GenerationRequest(fim=FimParts(prefix, suffix, header), sampling=sampling))
        text = _cut_at_stop(result.texts[0])
    else:
        messages = _chat(document, request, start, end)
        result = await collect(engine, GenerationRequest(messages=messages, sampling=sampling))
        match = _FENCE.search(result.texts[0])
        if match is None:
            return None
        text = match.group(1)
    if end < len(document.text) and not text.endswith("\n"):
        text += "\n"
    return text


def _cut_at_stop(text: str) -> str:
    for token in STOP_TOKENS:
        text = text.split(token, 1)[0]
    return text


def _chat(document: Document, request: FixRequest, start: int, end: int) -> tuple[Message, ...]:
    before = "".join(document.text[:start].splitlines(keepends=True)[-_CONTEXT_LINES:])
    after = "".join(document.text[end:].splitlines(keepends=True)[:_CONTEXT_LINES])
    question = (
        f"File {document.path} ({document.language}). Lines {request.first_line + 1}-{request.last_line + 1} "
        f"have this problem: {request.diagnostic.message}\n\nCode before them:\n```\n{before}```\n"
        f"The lines to fix:\n```\n{document.text[start:end]}```\nCode after them:\n```\n{after}```\n"
        "Reply with only the corrected replacement for the lines to fix, in one fenced code block."
    )
    system = "You fix code. You change as little as possible and keep the file's style."
    return (Message("system", system), Message("user", question))


def check_fix(document: Document, request: FixRequest, start: int, end: int, replacement: str) -> str | None:
    """None when the fix is acceptable, else why it is not."""
    assert document.language is not None
    if replacement == document.text[start:end]:
        return "the model changed nothing"
    before = syntax.syntax_issues(syntax.parse(document.text, document.language))
    edited = document.text[:start] + replacement + document.text[end:]
    after = syntax.syntax_issues(syntax.parse(edited, document.language))
    if len(after) > len(before):
        return "the fix adds syntax errors"
    first, last = request.first_line, request.first_line + max(0, replacement.count("\n") - 1)
    if any(issue.start_row <= last and issue.end_row >= first for issue in after):
        return "the fixed lines still have syntax errors"
    if is_ours(request.diagnostic) and len(after) >= len(before):
        return "the syntax error is still there"
    if document.language == "python":  # tree-sitter does not see indentation errors; CPython does
        problem = syntax.python_compile_error(edited)
        if problem is not None and first <= problem.start_row <= last:
            return f"the fixed lines do not compile ({problem.message})"
    return None


def minimal_edit(text: str, start: int, end: int, replacement: str) -> SpanEdit:
    """The replacement of text[start:end] trimmed to the part that really changes."""
    old = text[start:end]
    head = 0
    while head < min(len(old), len(replacement)) and old[head] == replacement[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(replacement)) - head and old[-1 - tail] == replacement[-1 - tail]:
        tail += 1
    return SpanEdit(start + head, end - tail, replacement[head : len(replacement) - tail])
