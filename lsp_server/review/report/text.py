"""A readable report for a terminal: which model reviewed, findings grouped by file with the flagged lines and
any suggestion, then a one-line summary."""

from __future__ import annotations

import re
from io import StringIO

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape

from lsp_server.review.findings import Finding
from lsp_server.review.report.positions import char_span
from lsp_server.review.runner import ReviewReport
from lsp_server.terminal_safe import BIDI, CONTROLS, escaped

STYLES = {"error": "bold red", "warning": "yellow", "note": "cyan"}


def print_text(report: ReviewReport, console: Console) -> None:
    """Lines are never hard-wrapped (soft_wrap), so the output stays greppable."""
    console.print(_reviewer_line(report), soft_wrap=True)
    for note in report.notes:
        console.print(f"[dim]note: {escape(printable(note))}[/dim]", soft_wrap=True)
    for skipped in report.skipped:
        style = "yellow" if skipped.refused else "dim"
        console.print(f"[{style}]not reviewed: {escape(shown_path(skipped.path))}: {escape(printable(skipped.reason))}[/{style}]",
                      soft_wrap=True)  # fmt: skip
    path = None
    for finding in report.findings:
        if finding.path != path:
            path = finding.path
            console.print(f"\n[bold]{escape(shown_path(path))}[/bold]", soft_wrap=True)
        _print_finding(finding, console)
    console.print("\n" + summary(report), soft_wrap=True)


def to_text(report: ReviewReport, width: int = 100) -> str:
    """The report as plain text (no colour codes), e.g. for a file or a test."""
    console = Console(file=StringIO(), width=width, color_system=None, highlight=False, emoji=False)
    print_text(report, console)
    return console.file.getvalue()  # type: ignore[attr-defined]


def _reviewer_line(report: ReviewReport) -> str:
    if report.model is None:
        return "Deterministic checks only (no model)."
    cached = f", {report.cached_units} from cache" if report.cached_units else ""
    return (
        f"Reviewed by {escape(printable(report.model))}: {report.units} hunk(s) in {report.chunks} request(s){cached}."
    )


def _print_finding(finding: Finding, console: Console) -> None:
    where = f"{finding.start_line}" if finding.start_line == finding.end_line else (
        f"{finding.start_line}-{finding.end_line}")  # fmt: skip
    style = STYLES[finding.severity]
    console.print(f"  {where}: [{style}]{finding.severity}[/{style}] {escape(printable(finding.message))} "
                  f"[dim]({escape(finding.rule_id)})[/dim]", soft_wrap=True)  # fmt: skip
    for number, line in enumerate(finding.snippet[:5], start=finding.start_line):
        console.print(f"[dim]{number:>6} │[/dim] {escape(printable(line))}", soft_wrap=True)
    if finding.start_column is not None and len(finding.snippet) == 1:
        console.print(f"[dim]{'':>6} │[/dim] [{style}]{_caret(finding)}[/{style}]", soft_wrap=True)
    if finding.replacement is not None:
        console.print("[green]  suggestion:[/green]")
        for line in finding.replacement.split("\n")[:10]:
            console.print(f"[green]{'':>6} +[/green] {escape(printable(line))}", soft_wrap=True)


def _caret(finding: Finding) -> str:
    """^^^ under the flagged columns, measured in terminal cells (wide characters take two, an escaped control
    character as many as its escape)."""
    line = finding.snippet[0]
    start, end = char_span(finding)
    return " " * cell_len(printable(line[:start])) + "^" * max(1, cell_len(printable(line[start:end])))


_CONTROL = re.compile(rf"[{CONTROLS}{BIDI}]")  # all but tab and line feed, and bidi controls


def printable(text: str) -> str:
    """Text from a changed file, a file name or a model, safe for a terminal: bytes that were not UTF-8 become
    U+FFFD, and control characters are shown as escapes (`\\x1b`): a changed line holding an escape sequence
    would otherwise clear the screen, retitle the window or, with a carriage return, print over what came
    before it. Bidi controls are escaped too (`\\u202e`), so the line reads in the order it runs."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _CONTROL.sub(escaped, text)


def shown_path(path: str) -> str:
    """A path on one line: control characters (a newline in a file name) written as escapes."""
    path = printable(path).replace("\t", "\\t").replace("\n", "\\n")
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in path)


def summary(report: ReviewReport) -> str:
    counts = {severity: 0 for severity in STYLES}
    for finding in report.findings:
        counts[finding.severity] += 1
    parts = ", ".join(f"{n} {severity}{'s' if n != 1 else ''}" for severity, n in counts.items())
    skipped = f" {len(report.skipped)} file(s) not reviewed." if report.skipped else ""
    return f"{len(report.findings)} finding(s) in {report.files} changed file(s): {parts}.{skipped}"
