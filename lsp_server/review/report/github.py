"""GitHub Actions workflow commands (`::error file=...::message`), which show as annotations on the pull
request. Values are escaped as the runner expects: %, CR and LF everywhere, plus ':' and ',' in properties.
Other control characters and bidi controls in the message and title are written as Python escapes (`\\x1b`,
`\\u202e`), as in the text report: the runner's log renders terminal escapes, and GitHub's page shows an
annotation in the order a bidi override dictates. The file property stays exact: it must name the file."""

from __future__ import annotations

import re

from lsp_server.review.diff import Skipped
from lsp_server.review.findings import Finding
from lsp_server.review.report.positions import char_span
from lsp_server.review.runner import ReviewReport
from lsp_server.terminal_safe import BIDI, escaped

COMMANDS = {"error": "error", "warning": "warning", "note": "notice"}
SKIPPED_TITLE = "mimo/skipped"


def to_github(report: ReviewReport) -> str:
    return "".join(line + "\n" for line in (*map(annotation, report.findings), *map(skipped_line, report.skipped)))


def skipped_line(skipped: Skipped) -> str:
    """A notice (a warning when refused) for a path that was not read; refused paths are named in the message
    only, never as an annotation's file."""
    command = "warning" if skipped.refused else "notice"
    where = "" if skipped.refused else f"file={_escape_file(skipped.path)},"
    message = f"not reviewed: {skipped.path}: {skipped.reason}"
    return f"::{command} {where}title={SKIPPED_TITLE}::{_escape_data(message)}"


def annotation(finding: Finding) -> str:
    properties = {"file": finding.path, "line": str(finding.start_line), "endLine": str(finding.end_line),
                  "title": finding.rule_id}  # fmt: skip
    if finding.start_column is not None and finding.start_line == finding.end_line:
        start, end = char_span(finding)  # GitHub: 1-based characters, end inclusive, single lines only
        properties["col"], properties["endColumn"] = str(start + 1), str(max(end, start + 1))
    rendered = ",".join(
        f"{key}={_escape_file(value) if key == 'file' else _escape_property(value)}"
        for key, value in properties.items()
    )
    return f"::{COMMANDS[finding.severity]} {rendered}::{_escape_data(finding.message)}"


_UNSAFE = re.compile(rf"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{BIDI}]")  # CR and LF: the runner's %0D, %0A


def _escape_data(value: str) -> str:
    return _runner_escapes(_UNSAFE.sub(escaped, value))


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _escape_file(path: str) -> str:
    return _runner_escapes(path).replace(":", "%3A").replace(",", "%2C")


def _runner_escapes(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
