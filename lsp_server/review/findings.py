"""Findings: the dataclass every part of review shares, the tolerant parser for a model's JSON answer, and
anchoring: a model finding is kept only on changed lines, and its suggestion only if the file still parses."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from lsp_server import syntax
from lsp_server.review.context import ReviewUnit

Severity = Literal["error", "warning", "note"]
SEVERITY_RANK: dict[str, int] = {"note": 1, "warning": 2, "error": 3}
_SEVERITY_ALIASES = {
    "error": "error", "critical": "error", "high": "error", "bug": "error", "blocker": "error",
    "warning": "warning", "warn": "warning", "medium": "warning", "major": "warning",
    "note": "note", "info": "note", "low": "note", "minor": "note", "suggestion": "note", "hint": "note",
}  # fmt: skip
MODEL_RULE_PREFIX = "review/"

# The JSON a model must answer with; vLLM-backed engines can enforce it with guided decoding.
FINDINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "start_line": {"type": "integer", "minimum": 1},
                    "end_line": {"type": "integer", "minimum": 1},
                    "severity": {"enum": ["error", "warning", "note"]},
                    "rule": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"},
                    "message": {"type": "string"},
                    "replacement": {"type": ["string", "null"]},
                },
                "required": ["path", "start_line", "end_line", "severity", "rule", "message"],
            },
        }
    },
    "required": ["findings"],
}


class FindingsParseError(ValueError):
    """The model's answer held no findings JSON; the message is fed back to it for the one retry."""


@dataclass(frozen=True)
class Finding:
    path: str
    start_line: int  # 1-based, in the file after the change
    end_line: int  # inclusive
    severity: Severity
    rule_id: str  # stable: "mimo/<check>" for deterministic checks, "review/<slug>" for the model's
    message: str
    replacement: str | None = None  # new text for lines start_line..end_line (no trailing line break)
    start_column: int | None = None  # 0-based, in characters of start_line; None = the whole lines
    end_column: int | None = None  # 0-based, exclusive, in characters of end_line
    source: Literal["check", "model"] = "model"
    snippet: tuple[str, ...] = ()  # the lines start_line..end_line, for column conversions and reports

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self.severity]


def parse_model_answer(text: str) -> list[dict[str, Any]]:
    """The list of finding objects in a model's answer: tolerates code fences, prose around the JSON, a bare
    list and trailing commas. Raises FindingsParseError when nothing usable is there."""
    body = re.sub(r"```(?:json)?", "", text)
    start = min((i for i in (body.find("{"), body.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise FindingsParseError("the answer contained no JSON object")
    candidate = re.sub(r",\s*([}\]])", r"\1", body[start:])
    try:
        value, _ = json.JSONDecoder().raw_decode(candidate)
    except json.JSONDecodeError as error:
        raise FindingsParseError(f"the JSON was invalid: {error.msg} at character {error.pos}") from None
    items = value.get("findings") if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise FindingsParseError('the JSON object had no "findings" list')
    return [item for item in items if isinstance(item, dict)]


def printable(text: str) -> str:
    """Text safe to send or print: bytes that were not UTF-8 (lone surrogates) become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def normalize_rule(rule: object) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", str(rule or "").lower()).strip("-")[:40].strip("-")
    return MODEL_RULE_PREFIX + (slug or "general")


def _as_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def anchor(items: list[dict[str, Any]], units: list[ReviewUnit], after_texts: dict[str, str | None]) -> list[Finding]:
    """Turns raw items into findings on the units' changed lines; anything else is dropped."""
    findings = []
    for item in items:
        finding = _anchor_one(item, units)
        if finding is not None:
            findings.append(_checked_suggestion(finding, after_texts.get(finding.path)))
    return findings


def _anchor_one(item: dict[str, Any], units: list[ReviewUnit]) -> Finding | None:
    paths = {printable(unit.path): unit.path for unit in units}  # the prompt showed names as printable text
    path = str(item.get("path") or item.get("file") or "").strip()
    path = path.removeprefix("./").removeprefix("b/") if path not in paths else path
    if not path and len(paths) == 1:
        path = next(iter(paths))  # small models often leave the path out when there is only one file
    path = paths.get(path, path)
    start = _as_int(item.get("start_line", item.get("line")))
    end = _as_int(item.get("end_line")) or start
    message = str(item.get("message") or "").strip()
    severity = _SEVERITY_ALIASES.get(str(item.get("severity", "")).lower().strip(), "warning")
    if start is None or end is None or not message:
        return None
    start, end = min(start, end), max(start, end)
    unit = next((u for u in units if u.path == path and any(start <= n <= end for n in u.added_lines)), None)
    if unit is None:
        return None  # outside the changed lines
    known = {line.new_line: line.text for line in unit.lines if line.new_line is not None}
    start, end = max(start, min(known)), min(end, max(known))
    replacement = item.get("replacement")
    return Finding(
        path=path, start_line=start, end_line=end, severity=severity,  # type: ignore[arg-type]
        rule_id=normalize_rule(item.get("rule") or item.get("rule_id")), message=message,
        replacement=replacement if isinstance(replacement, str) else None,
        snippet=tuple(known.get(n, "") for n in range(start, end + 1)),
    )  # fmt: skip


def apply_replacement(text: str, finding: Finding) -> str:
    """The file text with the finding's lines replaced by its suggestion."""
    lines = text.split("\n")
    new_lines = finding.replacement.split("\n") if finding.replacement is not None else []
    return "\n".join(lines[: finding.start_line - 1] + new_lines + lines[finding.end_line :])


def _checked_suggestion(finding: Finding, after_text: str | None) -> Finding:
    """Keeps a suggestion only when it changes something and leaves a parseable file parseable."""
    if finding.replacement is None:
        return finding
    if finding.replacement.rstrip("\n") == "\n".join(finding.snippet):
        return replace(finding, replacement=None)
    finding = replace(finding, replacement=finding.replacement.rstrip("\n"))
    language = syntax.language_for_path(finding.path)
    if language is None:
        return finding  # no grammar: nothing to check against, like a suggestion in prose
    if after_text is None or syntax.adds_syntax_errors(after_text, apply_replacement(after_text, finding), language):
        return replace(finding, replacement=None)
    return finding


def sort_and_limit(findings: list[Finding], max_findings: int | None) -> list[Finding]:
    """Most severe first, checks before model findings, then by place; at most ``max_findings``."""
    ordered = sorted(findings, key=lambda f: (-f.rank, f.source != "check", f.path, f.start_line, f.rule_id))
    return ordered if max_findings is None else ordered[:max_findings]
