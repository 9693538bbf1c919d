"""Report formats. ``render(fmt, report)`` returns the text a command prints to stdout."""

from __future__ import annotations

import json as _json

from lsp_server.review.runner import ReviewReport

FORMATS = ("text", "json", "sarif", "rdjson", "github")


def render(fmt: str, report: ReviewReport) -> str:
    if fmt == "text":
        from lsp_server.review.report.text import to_text

        return to_text(report)
    if fmt == "github":
        from lsp_server.review.report.github import to_github

        return to_github(report)
    if fmt == "json":
        from lsp_server.review.report.json import to_json as build
    elif fmt == "sarif":
        from lsp_server.review.report.sarif import to_sarif as build
    elif fmt == "rdjson":
        from lsp_server.review.report.rdjson import to_rdjson as build
    else:
        raise ValueError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    # ASCII escapes keep lone surrogates (bytes that were not UTF-8) printable and the output valid JSON.
    return _json.dumps(build(report), indent=2) + "\n"
