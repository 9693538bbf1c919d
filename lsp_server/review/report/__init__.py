"""Report formats. ``render(fmt, report)`` returns the text a command prints to stdout."""

from __future__ import annotations

import json as _json

from lsp_server.review.runner import ReviewReport

FORMATS = ("text", "json", "sarif", "rdjson", "github")


def render(fmt: str, report: ReviewReport) -> str:
    if fmt == "text":
        from lsp_server.review.report.text import to_text

        return _printable(to_text(report))
    if fmt == "github":
        from lsp_server.review.report.github import to_github

        return _printable(to_github(report))
    if fmt == "json":
        from lsp_server.review.report.json import to_json as build
    elif fmt == "sarif":
        from lsp_server.review.report.sarif import to_sarif as build
    elif fmt == "rdjson":
        from lsp_server.review.report.rdjson import to_rdjson as build
    else:
        raise ValueError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    return _json.dumps(_printable(build(report)), indent=2, ensure_ascii=False) + "\n"


def _printable(value):
    """Lone surrogates (bytes that were not UTF-8 in a changed file) become U+FFFD, so the output is valid
    UTF-8 that any JSON reader accepts."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {key: _printable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_printable(item) for item in value]
    return value
