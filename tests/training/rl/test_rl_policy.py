"""The exported policy carries its model card: the base model's languages with python, or none (any) without."""

from __future__ import annotations

import json
import shutil

import pytest

from engine.model_card import CARD_FILE, trained_languages
from training.rl.policy import export_policy, load_policy


@pytest.mark.parametrize(
    ("base_card", "languages"),
    [
        ({"model": "base-rust", "languages": ["rust"]}, ["python", "rust"]),
        ({"model": "base-py", "languages": ["python"]}, ["python"]),  # not listed twice
        (None, None),  # a base without a card claims no languages: the tuned model neither
    ],
)
def test_the_export_writes_the_card_from_the_base_model(tiny_model_dir, tmp_path, base_card, languages):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    (base / CARD_FILE).unlink(missing_ok=True)
    if base_card is not None:
        (base / CARD_FILE).write_text(json.dumps(base_card))
    model, tokenizer = load_policy(str(base))
    out = export_policy(model, tokenizer, tmp_path / "my-run" / "model", "float32", str(base), "mimo train rl")
    card = json.loads((out / CARD_FILE).read_text())
    assert card["model"] == "my-run" and card.get("languages") == languages
    assert card["base"] == (base_card or {}).get("model", "base") and "mimo train rl" in card["about"]
    assert trained_languages(out) == (tuple(languages) if languages else None)  # what the engine reads
    assert (out / "model.safetensors").is_file() and tokenizer.padding_side == "right"
