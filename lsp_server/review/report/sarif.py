"""SARIF 2.1.0 that GitHub code scanning accepts: stable ruleIds with a rules table, 1-based regions in UTF-16
code units (SARIF's default column kind), partialFingerprints that survive line shifts, fixes with
replacements. The schema it is tested against is vendored beside this file (see SCHEMA.md)."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lsp_server.review.checks import CHECK_RULES
from lsp_server.review.diff import Skipped
from lsp_server.review.findings import MODEL_RULE_PREFIX, Finding
from lsp_server.review.report.positions import last_line, utf16_columns, utf16_length
from lsp_server.review.runner import ReviewReport

SCHEMA_PATH = Path(__file__).with_name("sarif-schema-2.1.0.json")
SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "mimo-review"
INFORMATION_URI = "https://github.com/mimo-code/mimo-code/blob/main/docs/review.md"
SRCROOT = "%SRCROOT%"


def to_sarif(report: ReviewReport, tool_version: str = "0.1.0") -> dict[str, Any]:
    rule_ids = sorted({f.rule_id for f in report.findings})
    rule_index = {rule: i for i, rule in enumerate(rule_ids)}
    occurrences: Counter[str] = Counter()
    results = []
    for finding in report.findings:
        line_hash = _line_hash(finding)
        occurrences[line_hash] += 1
        results.append(_result(finding, rule_index[finding.rule_id], f"{line_hash}:{occurrences[line_hash]}"))
    driver = {"name": TOOL_NAME, "version": tool_version, "informationUri": INFORMATION_URI,
              "rules": [_rule(rule) for rule in rule_ids]}  # fmt: skip
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "automationDetails": {"id": f"{TOOL_NAME}/"},
        "columnKind": "utf16CodeUnits",
        "results": results,
    }
    if report.model:
        run["properties"] = {"model": report.model}
    notifications = [_note(note) for note in report.notes] + [_skipped(s) for s in report.skipped]
    if notifications:
        run["invocations"] = [{"executionSuccessful": True, "toolExecutionNotifications": notifications}]
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _note(note: str) -> dict[str, Any]:
    return {"level": "note", "message": {"text": note}, "descriptor": {"id": "mimo/note"}}


def _skipped(skipped: Skipped) -> dict[str, Any]:
    """A path that was not read. A refused path (outside the repository, say) is named in the text only, never
    as an artifact location a viewer would try to open."""
    notification: dict[str, Any] = {
        "level": "warning" if skipped.refused else "note",
        "message": {"text": f"not reviewed: {skipped.path}: {skipped.reason}"},
        "descriptor": {"id": "mimo/skipped"},
    }
    if not skipped.refused:
        location = {"uri": quote(skipped.path), "uriBaseId": SRCROOT}
        notification["locations"] = [{"physicalLocation": {"artifactLocation": location}}]
    return notification


def _rule(rule_id: str) -> dict[str, Any]:
    if rule_id in CHECK_RULES:
        text = CHECK_RULES[rule_id]
    else:
        text = "Model review: " + rule_id.removeprefix(MODEL_RULE_PREFIX).replace("-", " ")
    return {"id": rule_id, "name": _pascal(rule_id), "shortDescription": {"text": text}}


def _pascal(rule_id: str) -> str:
    return "".join(word.capitalize() for word in rule_id.replace("/", "-").split("-") if word)


def _result(finding: Finding, rule_index: int, fingerprint: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": finding.severity,
        "message": {"text": finding.message},
        "locations": [{"physicalLocation": {"artifactLocation": _artifact(finding), "region": _region(finding)}}],
        "partialFingerprints": {"primaryLocationLineHash": fingerprint},
        "properties": {"source": finding.source},
    }
    if finding.replacement is not None:
        result["fixes"] = [_fix(finding)]
    return result


def _artifact(finding: Finding) -> dict[str, str]:
    return {"uri": quote(finding.path), "uriBaseId": SRCROOT}


def _region(finding: Finding) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": finding.start_line, "endLine": finding.end_line}
    if finding.start_column is not None or finding.end_column is not None:
        start, end = utf16_columns(finding)
        region["startColumn"] = start + 1
        if finding.start_line != finding.end_line or end > start:
            region["endColumn"] = end + 1
    if finding.snippet:
        region["snippet"] = {"text": "\n".join(finding.snippet)}
    return region


def _fix(finding: Finding) -> dict[str, Any]:
    deleted = {"startLine": finding.start_line, "startColumn": 1,
               "endLine": finding.end_line, "endColumn": utf16_length(last_line(finding)) + 1}  # fmt: skip
    return {
        "description": {"text": "Apply the suggested change"},
        "artifactChanges": [{"artifactLocation": _artifact(finding),
                             "replacements": [{"deletedRegion": deleted,
                                               "insertedContent": {"text": finding.replacement}}]}],
    }  # fmt: skip


def _line_hash(finding: Finding) -> str:
    """Stable across runs and line shifts: the rule, the file and the flagged text, not the line number."""
    text = "\n".join(line.strip() for line in finding.snippet)
    digest = hashlib.sha256(f"{finding.rule_id}\0{finding.path}\0{text}".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]
