"""The model cards our training commands write (training/model_card.py): languages from real shard manifests for
`mimo train pretrain`, the base model's card merged with a repository's languages for `mimo train repo`, read back
by the engines' own reader (engine.model_card)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.model_card import CARD_FILE, trained_languages
from engine.registry import NANO_DIR
from training.data.shards import ShardWriter
from training.model_card import lsp_ids, manifest_languages, pretrain_card, repo_card, write_card


def _shards(folder: Path, **manifest) -> Path:
    writer = ShardWriter(folder, vocab_size=1000)
    writer.write([1, 2, 3])
    writer.close(manifest)
    return folder


def test_data_languages_become_the_editors_ids():
    assert lsp_ids(["python", "typescript", "shell", "go", "python"]) == [
        "bash", "go", "python", "sh", "shellscript", "typescript", "typescriptreact",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {"python": {"files": 3, "tokens": 900}, "go": {"files": 1, "tokens": 0}},
            {"python"},
        ),  # no tokens: not trained
        ({"python": {"files": 2}}, {"python"}),  # `mimo train repo`'s shards count files
        ({}, set()),
        (None, None),  # a manifest that does not say
    ],
)
def test_manifest_languages(record, expected):
    assert manifest_languages({} if record is None else {"languages": record}) == expected


def test_a_pretrain_card_lists_the_languages_of_the_sources_the_stages_draw_from(tmp_path):
    sources = {
        "code": _shards(tmp_path / "code", languages={"python": {"files": 2, "tokens": 10}}),
        "web": _shards(tmp_path / "web", languages={"javascript": {"files": 1, "tokens": 5}}),
        "unused": _shards(tmp_path / "unused", languages={"rust": {"files": 1, "tokens": 5}}),
    }
    weights = [{"code": 0.7, "web": 0.3, "unused": 0.0}, {"code": 1.0}]
    card = pretrain_card("run-1", sources, weights)
    assert card["languages"] == ["javascript", "javascriptreact", "python"] and card["sources"] == ["code", "web"]
    (tmp_path / "model").mkdir()
    write_card(tmp_path / "model", card)
    assert trained_languages(tmp_path / "model") == ("javascript", "javascriptreact", "python")


def test_a_source_whose_manifest_does_not_say_leaves_the_card_without_languages(tmp_path):
    sources = {
        "code": _shards(tmp_path / "code", languages={"python": {"files": 2, "tokens": 10}}),
        "text": _shards(tmp_path / "text"),  # hand-made shards: what they hold is not recorded
    }
    card = pretrain_card("run-2", sources, [{"code": 0.5, "text": 0.5}])
    assert "languages" not in card and "text" in card["about"]
    (tmp_path / "model").mkdir()
    write_card(tmp_path / "model", card)
    assert trained_languages(tmp_path / "model") is None  # any language, never fewer than the model saw


def test_a_repo_card_adds_the_repositorys_languages_to_the_base_models(tmp_path):
    card = repo_card("my-run", NANO_DIR, {"go": {"files": 3}, "python": {"files": 9}})
    assert card["languages"] == ["go", "python"] and card["base"] == "mimo-nano"
    assert card["repository_languages"] == ["go", "python"]
    bare = tmp_path / "hf-model"
    bare.mkdir()
    assert "languages" not in repo_card("my-run", bare, ["python"])  # a base that claims none stays so
    (bare / CARD_FILE).write_text(json.dumps({"model": "m", "languages": "python"}), encoding="utf-8")
    assert "languages" not in repo_card("my-run", bare, ["go"])  # a malformed card is no claim either
