"""Settings from initializationOptions: typed, with defaults and one readable problem per bad value."""

from __future__ import annotations

from lsp_server.settings import Settings, settings_from_options


def test_no_options_give_the_defaults():
    assert settings_from_options(None) == (Settings(), [])


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
    joined = "\n".join(problems)
    for name in ("engine.backend", "engine.model", "completion.debounceMs", "completion.maxLines",
                 "completion.speed", "languages", "telemetry.enabled"):  # fmt: skip
        assert name in joined


def test_options_that_are_not_an_object():
    settings, problems = settings_from_options("fast please")
    assert settings == Settings() and problems == ["settings must be an object; using defaults"]
