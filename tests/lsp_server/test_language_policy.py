"""Completions only in the languages the model's card lists, unless the settings say otherwise."""

from __future__ import annotations

import asyncio

import pytest
from lsp_helpers import debug_stats, inline, instant_options, lsp_session, open_document
from lsprotocol import types as lsp

from engine.api import EngineInfo
from lsp_server.language_policy import completes_in, turned_off, why_not

NANO = EngineInfo(model="nano", backend="native", context_length=2048, fim_template="mimo-code", languages=("python",))
REMOTE = EngineInfo(model="MiMo-7B-RL", backend="remote", context_length=32768, fim_template="qwen")
GO = "package main\n\nfunc add(a int, b int) int {\n\t\n}\n"


@pytest.mark.parametrize(
    ("language", "settings", "engine", "expected"),
    [
        ("python", {}, NANO, True),
        ("go", {}, NANO, False),
        ("ruby", {}, NANO, False),
        ("go", {}, REMOTE, True),  # a model whose card lists nothing completes everywhere
        ("go", {"go": True}, NANO, True),
        ("python", {"python": False}, NANO, False),
        ("rust", {"*": True}, NANO, True),
        ("rust", {"*": True, "rust": False}, NANO, False),
        ("go", {"*": False}, REMOTE, False),
    ],
)
def test_completes_in(language, settings, engine, expected):
    assert completes_in(language, settings, engine) is expected


def test_only_settings_turn_a_language_off_before_the_model_is_known():
    assert turned_off("lua", {"lua": False}) and turned_off("go", {"*": False})
    assert not turned_off("go", {}) and not turned_off("go", {"*": False, "go": True})


def test_why_not_names_the_cards_languages_and_how_to_override():
    assert why_not("go", NANO) == (
        'MiMo: nano was trained on python only, so it does not complete go (set "languages": {"go": true} to turn '
        "it on anyway)"
    )
    prose = EngineInfo(model="prose", backend="native", context_length=512, fim_template=None, languages=())
    message = why_not("go", prose, "pass --any-language")
    assert "trained on no programming language" in message and "(pass --any-language to turn it on" in message


def _nano(tmp_path, **languages: bool) -> dict:
    return {
        "engine": {"model": "nano", "backend": "native", "threads": 1},
        "completion": {"debounceMs": 0, "maxDebounceMs": 0},
        "languages": languages,
        "telemetry": {"enabled": False},
    }


@pytest.mark.slow
async def test_nano_completes_python_but_not_go_unless_asked(tmp_path):
    go_uri, py_uri = (tmp_path / "main.go").as_uri(), (tmp_path / "m.py").as_uri()
    async with lsp_session(_nano(tmp_path)) as client:
        open_document(client, go_uri, GO, "go")
        open_document(client, py_uri, "def add(a, b):\n    \n", "python")
        assert await inline(client, go_uri, 3, 1) == []
        assert (await debug_stats(client))["engine_calls"] == 0
        await inline(client, go_uri, 3, 1)
        told = [m.message for m in client.messages if "does not complete go" in m.message]
        assert len(told) == 1 and "trained on python only" in told[0]  # said once, not on every keystroke
        await inline(client, py_uri, 1, 4)
        assert (await debug_stats(client))["engine_calls"] == 1
    async with lsp_session(_nano(tmp_path, go=True)) as client:
        open_document(client, go_uri, GO, "go")
        await inline(client, go_uri, 3, 1)
        assert (await debug_stats(client))["engine_calls"] == 1


async def test_a_model_without_a_card_completes_every_language(tmp_path):
    uri = (tmp_path / "main.go").as_uri()
    async with lsp_session(instant_options(tmp_path, text="return a + b")) as client:
        open_document(client, uri, GO, "go")
        assert await inline(client, uri, 3, 1) == ["return a + b"]
        client.workspace_did_change_configuration(
            lsp.DidChangeConfigurationParams(settings={**instant_options(tmp_path), "languages": {"go": False}})
        )
        await asyncio.sleep(0.2)
        assert await inline(client, uri, 3, 1) == []
