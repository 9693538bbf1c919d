""" "MiMo: review changes" in the editor: the buffer's uncommitted changes reviewed through `mimo review`'s
pipeline, findings published as diagnostics beside the syntax ones."""

from __future__ import annotations

import subprocess

import pytest
from lsp_helpers import instant_options, lsp_session, open_document
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

COMMITTED = "def add(a, b):\n    return a + b\n"
CONFLICTED = "def add(a, b):\n<<<<<<< HEAD\n    return a + b\n=======\n    return b + a\n>>>>>>> other\n"


def git_repository(root, files: dict[str, str]) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "test@example.com")
    git("config", "user.name", "Test")
    for name, text in files.items():
        (root / name).write_text(text)
    git("add", ".")
    git("commit", "-qm", "initial")


async def review(client, uri: str):
    return await client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command="mimo.review", arguments=[uri])
    )


async def diagnostics_from(client, uri: str, source: str) -> list[lsp.Diagnostic]:
    for _ in range(20):
        found = [d for d in client.diagnostics.get(uri, []) if d.source == source]
        if found:
            return found
        await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return []


async def test_review_of_an_unsaved_conflict_publishes_findings_with_the_nano_note(tmp_path):
    git_repository(tmp_path, {"calc.py": COMMITTED})
    uri = (tmp_path / "calc.py").as_uri()
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, CONFLICTED)  # the buffer, not the file on disk, is reviewed
        result = await review(client, uri)
        assert result["findings"] >= 1
        assert result["model"] is None  # the built-in model: deterministic checks only
        assert any("larger model" in note for note in result["notes"])
        found = await diagnostics_from(client, uri, "mimo review")
        assert found and any(d.range.start.line == 1 for d in found)  # the `<<<<<<<` line


async def test_review_of_an_unchanged_buffer_finds_nothing(tmp_path):
    git_repository(tmp_path, {"calc.py": COMMITTED})
    uri = (tmp_path / "calc.py").as_uri()
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, COMMITTED)
        result = await review(client, uri)
        assert result["findings"] == 0


async def test_review_needs_an_open_document(tmp_path):
    async with lsp_session(instant_options(tmp_path)) as client:
        with pytest.raises(JsonRpcException):
            await review(client, (tmp_path / "missing.py").as_uri())
        with pytest.raises(JsonRpcException):
            await client.workspace_execute_command_async(lsp.ExecuteCommandParams(command="mimo.review"))
        assert await client.workspace_execute_command_async(  # the server is still up
            lsp.ExecuteCommandParams(command="mimo.status")
        )
