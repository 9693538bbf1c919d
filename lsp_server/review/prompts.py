"""The review prompt: a system message with the rules and the answer's JSON shape, then each unit's context and
its diff with new-file line numbers, so the model can say which line it means."""

from __future__ import annotations

from engine.api import Message
from lsp_server.review.context import ReviewUnit
from lsp_server.review.findings import printable

SYSTEM = """You are a careful senior engineer reviewing a code change.
Report only real problems in the added lines (marked "+"): bugs, crashes, security issues, wrong logic, resource
leaks, and clear readability problems. Do not comment on removed lines or unchanged context. Do not praise.
Answer with one JSON object and nothing else:
{"findings": [{"path": "<file>", "start_line": <new line number>, "end_line": <new line number>,
"severity": "error" | "warning" | "note", "rule": "<short-kebab-case-id>", "message": "<one or two sentences>",
"replacement": "<optional: the corrected text of lines start_line..end_line, or null>"}]}
Line numbers are the numbers shown before each line of the change. With nothing to report, answer {"findings": []}."""

RETRY = (
    "Your answer could not be read: {error}. Answer again with only the JSON object described above, "
    'for example {{"findings": []}}.'
)


def render_unit(unit: ReviewUnit, show_imports: bool = True) -> str:
    parts = [f"File: {printable(unit.path)}" + (f" ({unit.language})" if unit.language else "")]
    if show_imports and unit.imports:
        parts.append("Imports:\n" + unit.imports)
    if unit.scope:
        parts.append(f"Enclosing {unit.scope}" + (":\n" + unit.scope_text if unit.scope_text else ""))
    parts.append("Change:\n" + "\n".join(_numbered(line.kind, line.new_line, line.text) for line in unit.lines))
    return "\n".join(parts)


def _numbered(kind: str, new_line: int | None, text: str) -> str:
    number = "" if new_line is None else str(new_line)
    return f"{number:>5} {kind} {printable(text)}"


def review_messages(units: list[ReviewUnit]) -> tuple[Message, ...]:
    """The chat for one chunk; a file's imports are shown once even when several of its hunks are in the chunk."""
    seen_imports: set[str] = set()
    sections = []
    for unit in units:
        sections.append(render_unit(unit, show_imports=unit.path not in seen_imports))
        seen_imports.add(unit.path)
    user = "Review this change.\n\n" + "\n\n---\n\n".join(sections)
    return (Message("system", SYSTEM), Message("user", user))


THOUGHT_TOO_LONG = "you ran out of room while thinking, before any answer; think briefly this time"


def retry_messages(first: tuple[Message, ...], answer: str, error: str) -> tuple[Message, ...]:
    """The first chat, the model's answer (without its thinking; left out when there was none) and the
    error. A reasoning model's thinking is never sent back: such models are trained without it in history."""
    reply = (Message("assistant", answer),) if answer else ()
    return (*first, *reply, Message("user", RETRY.format(error=error)))
