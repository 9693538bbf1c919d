"""mimo-card.json: the languages a checkpoint was trained on, surfaced in EngineInfo."""

from __future__ import annotations

import json

import pytest

from engine.model_card import CARD_FILE, trained_languages
from engine.registry import NANO_DIR, open_engine


def test_the_shipped_nano_claims_python_only():
    assert trained_languages(NANO_DIR) == ("python",)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, None),  # no card: a Hugging Face checkpoint claims nothing
        ('{"languages": ["python", "go"]}', ("python", "go")),
        ("not json", None),
        ('["python"]', None),
        ('{"languages": "python"}', None),
        ('{"languages": ["python", 3]}', None),
        ('{"languages": [""]}', None),
    ],
)
def test_a_card_is_read_or_ignored(tmp_path, content, expected):
    if content is not None:
        (tmp_path / CARD_FILE).write_text(content, encoding="utf-8")
    assert trained_languages(tmp_path) == expected


def test_a_card_without_languages_claims_none_without_a_warning(tmp_path, caplog):
    """What `mimo train repo` writes over a base without languages: any language, and nothing to warn about."""
    (tmp_path / CARD_FILE).write_text('{"model": "run", "about": "no languages recorded"}', encoding="utf-8")
    assert trained_languages(tmp_path) is None
    assert not caplog.records


async def test_the_native_engine_reports_the_cards_languages():
    engine = open_engine("nano", backend="native", threads=1)
    try:
        assert engine.info().languages == ("python",)
    finally:
        await engine.aclose()


def test_the_card_is_valid_json_with_a_model_name():
    card = json.loads((NANO_DIR / CARD_FILE).read_text(encoding="utf-8"))
    assert card["model"] == "mimo-nano"
