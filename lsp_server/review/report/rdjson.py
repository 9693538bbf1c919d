"""reviewdog's Reviewdog Diagnostic Format (rdjson): 1-based lines and 1-based columns counted in UTF-8 bytes,
exclusive range ends, severities ERROR / WARNING / INFO, rule ids as ``code.value`` and suggestions that replace
whole lines."""

from __future__ import annotations

from typing import Any

from lsp_server.review.diff import Skipped
from lsp_server.review.findings import Finding
from lsp_server.review.report.positions import last_line, utf8_columns, utf8_length
from lsp_server.review.report.sarif import INFORMATION_URI, TOOL_NAME
from lsp_server.review.runner import ReviewReport

SEVERITIES = {"error": "ERROR", "warning": "WARNING", "note": "INFO"}
SKIPPED_CODE = "mimo/skipped"


def to_rdjson(report: ReviewReport) -> dict[str, Any]:
    return {
        "source": {"name": TOOL_NAME, "url": INFORMATION_URI},
        "diagnostics": [_diagnostic(finding) for finding in report.findings] + [_skipped(s) for s in report.skipped],
    }


def _skipped(skipped: Skipped) -> dict[str, Any]:
    """A path that was not read, as a file-level diagnostic (no range): rdjson has no place for notices."""
    return {
        "message": f"not reviewed: {skipped.reason}",
        "location": {"path": skipped.path},
        "severity": "WARNING" if skipped.refused else "INFO",
        "code": {"value": SKIPPED_CODE},
    }


def _diagnostic(finding: Finding) -> dict[str, Any]:
    start, end = utf8_columns(finding)
    diagnostic: dict[str, Any] = {
        "message": finding.message,
        "location": {"path": finding.path, "range": {
            "start": {"line": finding.start_line, "column": start + 1},
            "end": {"line": finding.end_line, "column": end + 1},
        }},
        "severity": SEVERITIES[finding.severity],
        "code": {"value": finding.rule_id},
    }  # fmt: skip
    if finding.replacement is not None:
        whole_lines = {
            "start": {"line": finding.start_line, "column": 1},
            "end": {"line": finding.end_line, "column": utf8_length(last_line(finding)) + 1},
        }
        diagnostic["suggestions"] = [{"range": whole_lines, "text": finding.replacement}]
    return diagnostic
