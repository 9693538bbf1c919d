"""The server over the real in-process engine (the tiny random MiMo checkpoint) and the router's fallback."""

from __future__ import annotations

import asyncio
import socket

import pytest
from lsp_helpers import debug_stats, inline, lsp_session, open_document

pytestmark = pytest.mark.slow


def _options(tmp_path, model_dir, **engine):
    return {
        "engine": {"model": str(model_dir), "threads": 1, **engine},
        "completion": {"debounceMs": 0, "maxDebounceMs": 0},
        "telemetry": {"enabled": True, "path": str(tmp_path / "telemetry.sqlite")},
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_completion_with_the_native_engine_streams_and_reports_loading(tmp_path, uri, tiny_model_dir):
    async with lsp_session(_options(tmp_path, tiny_model_dir)) as client:
        open_document(client, uri, "def add(a, b):\n    return a\n")
        items = await inline(client, uri, 1, 12)
        stats = await debug_stats(client)
        assert stats["engine_state"] == "ready" and stats["engine_calls"] == 1
        assert all(isinstance(text, str) and text.strip() for text in items)  # cleaned, or nothing
        for _ in range(200):  # the status and the answer race; the status follows within a moment
            if client.statuses and client.statuses[-1]["state"] == "ready":
                break
            await asyncio.sleep(0.05)
        assert [s["state"] for s in client.statuses] == ["loading", "ready"]
        (reports,) = client.progress_reports.values()
        assert reports[0].title.startswith("MiMo: loading")


async def test_unreachable_remote_engine_falls_back_to_the_local_model_and_says_so(tmp_path, uri, tiny_model_dir):
    options = _options(tmp_path, tiny_model_dir, url=f"http://127.0.0.1:{_free_port()}")
    async with lsp_session(options) as client:
        open_document(client, uri, "def add(a, b):\n    return a\n")
        await inline(client, uri, 1, 12)
        for _ in range(100):
            if any(s["state"] == "fallback" for s in client.statuses):
                break
            await asyncio.sleep(0.05)
        fallback = [s for s in client.statuses if s["state"] == "fallback"]
        assert fallback and "fallback" in fallback[0]["message"]
        assert any("fallback" in message.message for message in client.messages)


async def test_a_missing_model_is_shown_and_completions_stay_empty(tmp_path, uri):
    async with lsp_session(_options(tmp_path, tmp_path / "no-such-model")) as client:
        open_document(client, uri, "def add(a, b):\n    \n")
        assert await inline(client, uri, 1, 4) == []
        assert any("no-such-model" in message.message for message in client.messages)
        assert (await debug_stats(client))["engine_state"] == "error"
