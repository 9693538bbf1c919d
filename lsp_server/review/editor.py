"""Review for the editor ("MiMo: review changes"): the current buffer's uncommitted changes against HEAD,
through the same pipeline as `mimo review`, returned as LSP diagnostics and quick-fix code actions.

The buffer text is what the person sees, saved or not, so the diff is made here (difflib) instead of by git.
LSP positions are 0-based lines and UTF-16 code units."""

from __future__ import annotations

import asyncio
import difflib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from lsprotocol import types as lsp

from engine.api import Engine
from lsp_server.review.diff import Diff, DiffError, parse_diff
from lsp_server.review.findings import Finding
from lsp_server.review.report.positions import last_line, utf16_columns, utf16_length
from lsp_server.review.runner import ReviewConfig, review_diff
from lsp_server.review.sources import blob, head_or_empty_tree, repository_root
from lsp_server.safe_files import UnsafePath, check_relative_path

SOURCE = "mimo review"
_SEVERITIES = {
    "error": lsp.DiagnosticSeverity.Error,
    "warning": lsp.DiagnosticSeverity.Warning,
    "note": lsp.DiagnosticSeverity.Information,
}


@dataclass(frozen=True)
class EditorReview:
    diagnostics: list[lsp.Diagnostic]
    code_actions: list[lsp.CodeAction]  # one quick fix per finding whose suggestion was checked
    model: str | None  # None when only the deterministic checks ran
    notes: tuple[str, ...] = ()


async def review_document(
    path: Path, text: str, engine: Engine | None, config: ReviewConfig | None = None, uri: str | None = None
) -> EditorReview:
    """Reviews ``text`` (the buffer of ``path``) against the file at HEAD; a file git does not know yet is
    reviewed as new. Outside a git repository there is nothing to compare with, and a note says so."""
    path = path.absolute()
    text = text.encode("utf-8", "replace").decode("utf-8")  # JSON may carry lone surrogates; git never does
    diff = await asyncio.to_thread(_buffer_change, path, text)  # git may be slow: not on the server's loop
    if isinstance(diff, str):
        return EditorReview([], [], None, (diff,))
    report = await review_diff(diff, engine, config or ReviewConfig())
    uri = uri or path.as_uri()
    diagnostics = [to_diagnostic(f) for f in report.findings]
    pairs = zip(report.findings, diagnostics, strict=True)
    actions = [to_quick_fix(f, d, uri) for f, d in pairs if f.replacement is not None]
    return EditorReview(diagnostics, actions, report.model, report.notes)


def _buffer_change(path: Path, text: str) -> Diff | str:
    """The buffer's change against HEAD as a Diff, or a note saying why there is none to review."""
    try:
        root = repository_root(path)
        if root is None:
            return f"{path.name} is not in a git repository: no changes to review"
        relative = _inside(root, path)
        if isinstance(relative, UnsafePath):
            return f"{path.name} is not reviewed: {relative.reason}"
        base = head_or_empty_tree(root)
        before = blob(root, f"{base}:{relative}")
    except UnsafePath as unsafe:
        return f"{path.name} is not reviewed: its committed version is {unsafe.reason}"
    except DiffError as error:  # git is missing, or hangs on the repository's config
        return f"{path.name} is not reviewed: {error}"
    diff_text = buffer_diff(relative, before, text)
    if not diff_text:
        return "no uncommitted changes in this file"
    # The path is known here; the patch text's own header would misread names with spaces or line breaks.
    changes = tuple(replace(c, path=relative, old_path=None if c.status == "added" else relative)
                    for c in parse_diff(diff_text))  # fmt: skip
    return Diff(changes, root, base, "buffers", {relative: text.encode("utf-8")})


def _inside(root: Path, path: Path) -> str | UnsafePath:
    """The buffer's path relative to the repository, through linked folders above the file but not through the
    file itself: a buffer that is a symbolic link shows another file's text under this name."""
    real = Path(os.path.realpath(path.parent)) / path.name
    try:
        relative = real.relative_to(Path(os.path.realpath(root))).as_posix()
        check_relative_path(relative)
    except ValueError:
        return UnsafePath("it lies outside its repository")
    except UnsafePath as unsafe:
        return unsafe
    if real.is_symlink():
        return UnsafePath("it is a symbolic link; review reads only regular files")
    return relative


def _lines(text: str) -> list[str]:
    """Lines split on "\n" alone (a form feed or a lone CR stays inside its line, as in git)."""
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def buffer_diff(relative: str, before: bytes | None, text: str) -> str:
    """A unified diff of HEAD's file and the buffer, as git would print it (empty when they are the same)."""
    old = _lines(before.decode("utf-8", "surrogateescape")) if before is not None else []
    new = _lines(text)
    if before is not None and old == new:
        return ""
    lines = difflib.unified_diff(
        [line + "\n" for line in old], [line + "\n" for line in new],
        fromfile=f"a/{relative}" if before is not None else "/dev/null", tofile=f"b/{relative}", n=3,
    )  # fmt: skip
    header = f"diff --git a/{relative} b/{relative}\n" + ("new file mode 100644\n" if before is None else "")
    body = "".join(lines)
    return header + body if body else ""


def to_diagnostic(finding: Finding) -> lsp.Diagnostic:
    start, end = utf16_columns(finding)
    return lsp.Diagnostic(
        range=lsp.Range(lsp.Position(finding.start_line - 1, start), lsp.Position(finding.end_line - 1, end)),
        message=finding.message,
        severity=_SEVERITIES[finding.severity],
        code=finding.rule_id,
        source=SOURCE,
    )


def to_quick_fix(finding: Finding, diagnostic: lsp.Diagnostic, uri: str) -> lsp.CodeAction:
    """Replaces the finding's whole lines (to the end of its last line, keeping the line break) with the
    suggestion."""
    whole_lines = lsp.Range(
        lsp.Position(finding.start_line - 1, 0), lsp.Position(finding.end_line - 1, utf16_length(last_line(finding)))
    )
    edit = lsp.TextEdit(range=whole_lines, new_text=finding.replacement or "")
    return lsp.CodeAction(
        title="MiMo: " + finding.message.partition("\n")[0][:80],
        kind=lsp.CodeActionKind.QuickFix,
        diagnostics=[diagnostic],
        edit=lsp.WorkspaceEdit(changes={uri: [edit]}),
    )
