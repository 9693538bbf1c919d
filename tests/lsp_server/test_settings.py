"""Settings from initializationOptions: typed, with defaults, and one readable problem per bad or unknown key,
which falls back to its default while every other key still applies."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from lsp_server.settings import BACKENDS, CompletionSettings, EngineSettings, Settings, settings_from_options


def test_no_options_give_the_defaults():
    assert settings_from_options(None) == (Settings(), [])
    assert settings_from_options({}) == (Settings(), [])


def test_options_by_their_camel_case_names():
    settings, problems = settings_from_options(
        {
            "engine": {"model": "/models/x", "url": "http://gpu:8000", "remoteModel": "mimo"},
            "completion": {"debounceMs": 120, "maxLines": 4, "contextTokens": 2048},
            "languages": {"lua": False},
            "telemetry": {"enabled": False},
        }
    )
    assert problems == []
    assert (settings.engine.model, settings.engine.url, settings.engine.remote_model) == (
        "/models/x", "http://gpu:8000", "mimo",
    )  # fmt: skip
    assert (settings.completion.debounce_ms, settings.completion.max_lines) == (120.0, 4)
    assert settings.completion.context_tokens == 2048
    assert not settings.language_enabled("lua") and settings.language_enabled("python")
    assert settings.telemetry is False


def test_settings_nested_under_mimo_are_found():
    settings, _ = settings_from_options({"mimo": {"completion": {"maxLines": 3}}})
    assert settings.completion.max_lines == 3


def test_a_bare_switch_is_short_for_enabled():
    settings, problems = settings_from_options({"telemetry": False, "diagnostics": False})
    assert problems == [] and settings.telemetry is False and settings.diagnostics is False


def test_bad_values_are_reported_and_replaced_by_defaults():
    settings, problems = settings_from_options(
        {
            "engine": {"backend": "gpu-magic", "model": ""},
            "completion": {"debounceMs": -5, "maxLines": "many", "speed": 11},
            "languages": ["python"],
            "telemetry": {"enabled": "yes"},
        }
    )
    assert settings == Settings()
    assert sorted(problems) == sorted(
        [
            'engine.model = "": must be a non-empty string; using "nano"',
            "engine.backend = \"gpu-magic\": must be one of 'native', 'vllm' or 'instant'; using \"native\"",
            "completion.debounceMs = -5: must be at least 0; using 75.0",
            'completion.maxLines = "many": must be an integer; using 12',
            "unknown key completion.speed; allowed: debounceMs, maxDebounceMs, maxLines, contextTokens, "
            "singleLineTokens, multiLineTokens, promptMode; ignored",
            'languages = ["python"]: must be an object; using {}',
            'telemetry.enabled = "yes": must be true or false; using true',
        ]
    )


def test_each_bad_key_falls_back_alone():
    settings, problems = settings_from_options(
        {"completion": {"maxLines": 0, "debounceMs": 30}, "languages": {"lua": "no", "go": False}, "colour": "red"}
    )
    assert settings.completion == CompletionSettings(debounce_ms=30)  # maxLines back to 12, debounce kept
    assert settings.languages == {"go": False}
    assert problems[0] == "completion.maxLines = 0: must be at least 1; using 12"
    assert 'languages.lua = "no": must be true or false; ignored' in problems
    assert "unknown key colour; allowed: engine, completion, languages, diagnostics, telemetry; ignored" in problems


def test_unknown_keys_get_a_close_match():
    _, problems = settings_from_options({"engine": {"remotemodel": "mimo"}, "completion": {"maxLInes": 3}})
    assert problems[0].startswith("unknown key engine.remotemodel (did you mean engine.remoteModel?); allowed:")
    assert problems[1].startswith("unknown key completion.maxLInes (did you mean completion.maxLines?)")


def test_numbers_are_not_read_from_booleans_or_strings():
    settings, problems = settings_from_options({"engine": {"threads": True}, "completion": {"contextTokens": "9"}})
    assert settings == Settings()
    assert problems == [
        "engine.threads = true: must be an integer; using 0",
        'completion.contextTokens = "9": must be an integer; using 0',
    ]


@pytest.mark.parametrize("options", ["fast please", {"mimo": 3}, [1, 2]])
def test_options_that_are_not_an_object(options):
    settings, problems = settings_from_options(options)
    assert settings == Settings() and problems == ["settings must be an object; using defaults"]


def test_a_switch_that_is_neither_a_flag_nor_an_object():
    settings, problems = settings_from_options({"diagnostics": "on"})
    assert settings.diagnostics is True
    assert problems == [
        'diagnostics = "on": must be true or false, or an object such as {"enabled": true}; using its defaults'
    ]


def test_python_code_builds_and_replaces_settings_by_field_name_and_is_checked():
    engine = EngineSettings(model="/m", backend="instant")
    assert dataclasses.replace(engine, url="http://x").url == "http://x"
    assert set(BACKENDS) == {"native", "vllm", "instant"}
    with pytest.raises(ValidationError):
        EngineSettings(backend="gpu-magic")
    with pytest.raises(ValidationError):
        CompletionSettings(max_lines=0)
