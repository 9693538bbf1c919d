"""Column conversions. Findings hold 0-based character (code point) columns; SARIF and LSP count UTF-16 code
units, reviewdog counts UTF-8 bytes. Lines may hold lone surrogates for bytes that were not UTF-8: each such
surrogate stands for one byte, which both encoders below count as one unit."""

from __future__ import annotations

from lsp_server.review.findings import Finding


def utf8_length(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def utf16_length(text: str) -> int:
    # surrogatepass encodes a lone surrogate as one 16-bit unit, as an editor holding that text would.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def char_span(finding: Finding) -> tuple[int, int]:
    """The finding's columns in characters: (start on start_line, exclusive end on end_line); whole lines when
    the finding has no columns."""
    first = finding.snippet[0] if finding.snippet else ""
    last = finding.snippet[-1] if finding.snippet else ""
    start = finding.start_column if finding.start_column is not None else 0
    end = finding.end_column if finding.end_column is not None else len(last)
    return min(start, len(first)), min(end, len(last))


def first_line(finding: Finding) -> str:
    return finding.snippet[0] if finding.snippet else ""


def last_line(finding: Finding) -> str:
    return finding.snippet[-1] if finding.snippet else ""


def utf8_columns(finding: Finding) -> tuple[int, int]:
    """0-based UTF-8 byte columns (start on start_line, exclusive end on end_line)."""
    start, end = char_span(finding)
    return utf8_length(first_line(finding)[:start]), utf8_length(last_line(finding)[:end])


def utf16_columns(finding: Finding) -> tuple[int, int]:
    """0-based UTF-16 code unit columns (start on start_line, exclusive end on end_line)."""
    start, end = char_span(finding)
    return utf16_length(first_line(finding)[:start]), utf16_length(last_line(finding)[:end])
