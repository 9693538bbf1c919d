"""Fix with MiMo with the real shipped nano, through the real server over stdio: on every broken file of
fixes/broken.toml the fix offered is right, or none is offered. Set MIMO_FIX_TABLE=path to write the table
docs/lsp.md shows."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from lsp_helpers import lsp_session, open_document
from lsprotocol import types as lsp

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

CASES = tomllib.loads((Path(__file__).parent / "fixes" / "broken.toml").read_text(encoding="utf-8"))["case"]
SUFFIXES = {"python": "py", "javascript": "js", "go": "go"}


def _nano_options(tmp_path: Path) -> dict:
    return {"engine": {"model": "nano", "backend": "native", "threads": 1}, "telemetry": {"enabled": False}}


async def _fix(client, uri: str, case: dict) -> tuple[str, str | None]:
    """The first diagnostic's fix: ("offered", the fixed line) or ("not offered", None)."""
    open_document(client, uri, case["text"], case["language"])
    published = await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    while published.uri != uri:
        published = await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    diagnostic = published.diagnostics[0]
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri),
            range=diagnostic.range,
            context=lsp.CodeActionContext(diagnostics=[]),
        )
    )
    resolved = await client.code_action_resolve_async(actions[0])
    if resolved.edit is None:
        return "not offered", resolved.disabled.reason
    (edit,) = resolved.edit.changes[uri]
    lines = case["text"].split("\n")
    row = edit.range.start.line
    assert edit.range.end.line == row, "a fix stays on the diagnostic's line"
    line = lines[row]
    fixed = line[: edit.range.start.character] + edit.new_text + line[edit.range.end.character :]
    return "offered", fixed.strip()


@pytest.mark.slow
async def test_nano_fixes_are_right_or_not_offered(tmp_path):
    rows = []
    async with lsp_session(_nano_options(tmp_path)) as client:
        for index, case in enumerate(CASES):
            uri = (tmp_path / f"case{index}.{SUFFIXES[case['language']]}").as_uri()
            outcome, detail = await _fix(client, uri, case)
            right = outcome == "offered" and detail in case["right"]
            rows.append(
                (case["name"], outcome, "right" if right else ("wrong" if outcome == "offered" else "-"), detail)
            )
    table = ["| broken file | fix | verdict | the fixed line, or why none was offered |", "|---|---|---|---|"]
    table += [f"| {name} | {outcome} | {verdict} | `{detail}` |" for name, outcome, verdict, detail in rows]
    if os.environ.get("MIMO_FIX_TABLE"):
        Path(os.environ["MIMO_FIX_TABLE"]).write_text("\n".join(table) + "\n", encoding="utf-8")
    wrong = [row for row in rows if row[2] == "wrong"]
    assert not wrong, "\n".join(table)
    assert sum(row[2] == "right" for row in rows) >= 3, "\n".join(table)  # the feature does something
