"""Checked fix-its: for a diagnostic (from any source), ask the model to rewrite the statement it points at and
offer the result as a minimal edit only if it passes ``fix_check``: it parses, and it keeps the code.

The lines a fix may touch are the diagnostic's own, at most ``MAX_TARGET_LINES``; a longer range (tree-sitter's
error recovery often runs an ERROR node to the end of a function) means its first line, where the problem is.
Nothing outside those lines is ever part of an edit.

With a FIM model, the model infills the rest of the line from where the problem is (CPython's exact point for
Python, else the diagnostic's start), then the whole statement after its indentation; an indentation error
has the whole line rewritten. Each infill is cut after as many lines as it replaces. With a chat-only model it
is asked for the corrected lines in a fenced block, its thinking (``<think>…</think>``, reasoning models)
dropped first. Greedy first, then samples; the first answer that passes is offered. Listing is instant
(``requests_for``); ``compute_fix`` runs on resolve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from lsprotocol import types as lsp
from lsprotocol.converters import get_converter

from engine.api import Engine, EngineError, FimParts, GenerationRequest, Message, SamplingParams
from lsp_server import fix_check, syntax
from lsp_server.context import comment_prefix
from lsp_server.diagnostics import is_ours, syntax_diagnostics
from lsp_server.documents import Document, Pos
from lsp_server.postprocess.stop_sequences import STOP_TOKENS
from lsp_server.reasoning import generate_answer

_CONVERTER = get_converter()
_CONTEXT_LINES = 40
MAX_TARGET_LINES = 3
MAX_TARGET_CHARS = 2_000  # a minified or generated line is no statement to rewrite (and diffs cost its square)
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
# Greedy first; then samples, as a small model's first answer often fails the checks where another passes.
_ATTEMPTS = (SamplingParams(temperature=0.0), SamplingParams(temperature=0.8, seed=1, n=4))
_CHAT_ATTEMPTS = (SamplingParams(temperature=0.0), SamplingParams(temperature=0.6, seed=1))
_CHAT_THINKING_CHARS = 12_000  # a reasoning model may think this long before its answer; then it is cut off
_CHAT_THINKING_TOKENS = 4_096


@dataclass(frozen=True)
class FixRequest:
    uri: str
    diagnostic: lsp.Diagnostic
    first_line: int
    last_line: int  # inclusive

    @property
    def title(self) -> str:
        lines = self.diagnostic.message.splitlines() or [""]
        return f"Fix with MiMo: {lines[0][:60]}"

    def to_data(self) -> dict[str, Any]:
        return {"mimo": "fix", "uri": self.uri, "diagnostic": _CONVERTER.unstructure(self.diagnostic)}

    @classmethod
    def from_data(cls, data: Any) -> FixRequest:
        if not isinstance(data, dict) or data.get("mimo") != "fix" or not isinstance(data.get("uri"), str):
            raise ValueError("missing the 'mimo': 'fix' marker or the document's uri")
        try:
            diagnostic = _CONVERTER.structure(data.get("diagnostic"), lsp.Diagnostic)
        except Exception as exc:  # cattrs raises exception groups, not ValueError
            raise ValueError(f"the diagnostic is not an LSP Diagnostic ({type(exc).__name__})") from None
        return request_for(data["uri"], diagnostic)


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
    last = max(start.line, last)
    if last - start.line + 1 > MAX_TARGET_LINES:
        last = start.line  # error recovery ran on past the statement: the problem is where the range starts
    return FixRequest(uri, diagnostic, start.line, last)


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
    if request.last_line >= document.line_count or request.first_line < 0:
        return FixOutcome(None, "the diagnostic is outside the document")
    if sum(len(document.line(row)) for row in range(request.first_line, request.last_line + 1)) > MAX_TARGET_CHARS:
        return FixOutcome(None, f"the lines are too long to fix (over {MAX_TARGET_CHARS} characters)")
    if is_ours(request.diagnostic) and not _still_broken(document, request):
        return FixOutcome(None, "the syntax error is no longer there (the document changed)")
    fim = engine.info().fim_template is not None
    indentation = _about_indentation(request.diagnostic)
    reason = "the model's answers had no code"
    for start, end in _spans(document, request, fim, indentation):
        for sampling in _ATTEMPTS if fim else _CHAT_ATTEMPTS:
            try:
                if fim:
                    answers = await _infill(engine, document, start, end, sampling)
                else:
                    answers = await _ask_chat(engine, document, request, start, end, sampling)
            except EngineError as exc:
                return FixOutcome(None, f"the model failed: {exc}")
            for replacement in answers:
                verdict = check_fix(document, request, start, end, replacement, indentation)
                if verdict is None:
                    return FixOutcome(minimal_edit(document.text, start, end, replacement))
                reason = verdict
    return FixOutcome(None, reason)


def _still_broken(document: Document, request: FixRequest) -> bool:
    """A syntax diagnostic listed before an edit may point at lines that parse now: nothing there to fix."""
    first, last = request.first_line, request.last_line
    return any(d.range.start.line <= last and d.range.end.line >= first for d in syntax_diagnostics(document))


def _about_indentation(diagnostic: lsp.Diagnostic) -> bool:
    """CPython's IndentationError and TabError, or another tool's diagnostic about indentation."""
    message = diagnostic.message
    return message.startswith(("IndentationError", "TabError")) or "indent" in message.lower()


def _spans(document: Document, request: FixRequest, fim: bool, indentation: bool) -> list[tuple[int, int]]:
    """The code point spans to have rewritten, in the order they are tried; each ends at the end of the last
    target line (its line break stays for an infill: the model only writes the lines).

    A chat model rewrites whole lines. An infill rewrites the line from where the diagnostic points (what comes
    before it there is what the parser accepted, and a small model completes a line far better than it
    rewrites one), then from the statement's start. Indentation errors: the whole line, indentation included."""
    first_start = document.offset_at_row(request.first_line)
    after_last = request.last_line + 1
    end = document.offset_at_row(after_last) if after_last < document.line_count else len(document.text)
    if not fim:
        return [(first_start, end)]
    end = first_start + len(document.text[first_start:end].rstrip("\r\n"))
    if indentation:
        return [(first_start, end)]
    first = document.line(request.first_line)
    code_start = first_start + len(first) - len(first.lstrip())
    at = request.diagnostic.range.start
    points = [document.offset_at(Pos(at.line, at.character))] if at.line == request.first_line else []
    exact = syntax.python_error_point(document.text) if document.language == "python" else None
    if exact is not None and exact[0] == request.first_line:  # CPython's point, before it was widened
        points.insert(0, first_start + min(exact[1], len(first)))
    spans = [(point, end) for point in points if code_start < point <= end]
    return list(dict.fromkeys([*spans, (min(code_start, end), end)]))


async def _infill(engine: Engine, document: Document, start: int, end: int, sampling: SamplingParams) -> list[str]:
    """The model's infills for text[start:end], each cut after as many lines as that span has."""
    lines = document.text[start:end].count("\n") + 1
    prefix = "".join(document.text[:start].splitlines(keepends=True)[-_CONTEXT_LINES:])
    suffix = "".join(document.text[end:].splitlines(keepends=True)[:_CONTEXT_LINES])
    header = f"{comment_prefix(document.language)} Path: {document.path}\n"
    sampling = replace(sampling, max_tokens=48 * lines + 16, stop=STOP_TOKENS)
    stream = engine.generate(GenerationRequest(fim=FimParts(prefix, suffix, header), sampling=sampling))
    texts: dict[int, str] = {}  # by sample index: only samples the engine answered
    try:
        async for chunk in stream:
            texts[chunk.index] = texts.get(chunk.index, "") + chunk.text
            if len(texts) == sampling.n and all(text.count("\n") >= lines for text in texts.values()):
                break  # the lines are written: what follows is the model going on into the suffix
    finally:
        await stream.aclose()
    cut = ("\n".join(_cut_at_stop(texts[index]).split("\n")[:lines]).rstrip() for index in sorted(texts))
    return list(dict.fromkeys(cut))  # distinct, in order; "" deletes the span (an unmatched bracket)


def _cut_at_stop(text: str) -> str:
    for token in STOP_TOKENS:
        text = text.split(token, 1)[0]
    return text


async def _ask_chat(
    engine: Engine, document: Document, request: FixRequest, start: int, end: int, sampling: SamplingParams
) -> list[str]:
    """The corrected lines from the model's fenced block; a reasoning model's thinking is dropped unread."""
    lines = request.last_line - request.first_line + 1
    sampling = replace(sampling, max_tokens=48 * lines + 32 + _CHAT_THINKING_TOKENS)
    request_ = GenerationRequest(messages=_chat(document, request, start, end), sampling=sampling)
    answer = await generate_answer(engine, request_, _CHAT_THINKING_CHARS)
    match = _FENCE.search(answer.answer)
    if match is None:
        return []
    text = match.group(1)
    if end < len(document.text) and not text.endswith("\n"):
        text += "\n"
    return [text]


def _chat(document: Document, request: FixRequest, start: int, end: int) -> tuple[Message, ...]:
    before = "".join(document.text[:start].splitlines(keepends=True)[-_CONTEXT_LINES:])
    after = "".join(document.text[end:].splitlines(keepends=True)[:_CONTEXT_LINES])
    question = (
        f"File {document.path} ({document.language}). Lines {request.first_line + 1}-{request.last_line + 1} "
        f"have this problem: {request.diagnostic.message}\n\nCode before them:\n```\n{before}```\n"
        f"The lines to fix:\n```\n{document.text[start:end]}```\nCode after them:\n```\n{after}```\n"
        "Reply with only the corrected replacement for the lines to fix, in one fenced code block. Change as "
        "little as possible: keep every token that is not part of the problem, and add no comments."
    )
    system = "You fix code. You change as little as possible and keep the file's style."
    return (Message("system", system), Message("user", question))


def check_fix(
    document: Document, request: FixRequest, start: int, end: int, replacement: str, indentation: bool = False
) -> str | None:
    """None when the fix is acceptable (it parses and keeps the code: see fix_check), else why it is not."""
    assert document.language is not None
    if replacement == document.text[start:end]:
        return "the model changed nothing"
    edited = document.text[:start] + replacement + document.text[end:]
    # Compared as whole lines: a span may start inside a word, which an infill could then extend.
    lines_start = document.offset_at_row(request.first_line)
    lines_end = document.text.find("\n", end - 1 if document.text[start:end].endswith("\n") else end)
    lines_end = len(document.text) if lines_end < 0 else lines_end
    old_lines = document.text[lines_start:lines_end]
    new_lines = edited[lines_start : lines_end + len(replacement) - (end - start)]
    renames = not is_ours(request.diagnostic)  # another tool's diagnostic may be an undefined name
    kept = fix_check.keeps_code(old_lines, new_lines, document.language, indentation, renames)
    if kept is not None:
        return kept
    rows = (request.first_line, request.first_line + replacement.rstrip("\n").count("\n"))
    return fix_check.syntax_verdict(document.text, edited, document.language, rows, is_ours(request.diagnostic))


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
