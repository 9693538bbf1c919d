"""Our own JSON report (schema "mimo-review/1", documented in docs/review.md): 1-based lines, 1-based columns
counted in characters (Unicode code points), null columns for whole-line findings."""

from __future__ import annotations

from typing import Any

from lsp_server.review.findings import SEVERITY_RANK, Finding
from lsp_server.review.report.positions import char_span
from lsp_server.review.runner import ReviewReport

SCHEMA_ID = "mimo-review/1"


def to_json(report: ReviewReport) -> dict[str, Any]:
    by_severity = {name: 0 for name in SEVERITY_RANK}
    for finding in report.findings:
        by_severity[finding.severity] += 1
    return {
        "schema": SCHEMA_ID,
        "model": report.model,
        "summary": {
            "files": report.files, "findings": len(report.findings), "by_severity": by_severity,
            "units": report.units, "cached_units": report.cached_units, "chunks": report.chunks,
            "left_out": len(report.left_out),
        },
        "notes": list(report.notes),
        "skipped": [{"path": s.path, "reason": s.reason, "refused": s.refused} for s in report.skipped],
        "findings": [_finding(f) for f in report.findings],
    }  # fmt: skip


def _finding(finding: Finding) -> dict[str, Any]:
    has_columns = finding.start_column is not None or finding.end_column is not None
    start, end = char_span(finding)
    return {
        "path": finding.path,
        "start_line": finding.start_line,
        "end_line": finding.end_line,
        "start_column": start + 1 if has_columns else None,
        "end_column": end + 1 if has_columns else None,
        "severity": finding.severity,
        "rule_id": finding.rule_id,
        "message": finding.message,
        "replacement": finding.replacement,
        "source": finding.source,
    }
