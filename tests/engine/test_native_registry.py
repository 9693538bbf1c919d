"""Model names resolve to checkpoint directories without touching the network."""

from __future__ import annotations

import pytest

from engine import registry
from engine.api import BadRequest, ModelNotFound
from engine.native import NativeEngine


def test_a_checkpoint_directory_resolves_to_itself(tiny_model_dir):
    assert registry.resolve_model(str(tiny_model_dir)) == tiny_model_dir.resolve()


def test_a_directory_without_config_is_named_in_the_error(tmp_path):
    with pytest.raises(ModelNotFound, match="has no config.json"):
        registry.resolve_model(str(tmp_path))


def test_nano_missing_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "NANO_DIR", tmp_path / "nano")
    with pytest.raises(ModelNotFound, match="mimo-nano checkpoint is missing"):
        registry.resolve_model("nano")


def test_a_hub_id_resolves_from_the_local_cache_only(monkeypatch, tmp_path):
    import huggingface_hub.constants

    snapshot = tmp_path / "models--acme--coder" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--acme--coder" / "refs").mkdir()
    (tmp_path / "models--acme--coder" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert registry.resolve_model("acme/coder") == snapshot
    with pytest.raises(ModelNotFound, match="acme/missing is not in the local Hugging Face cache"):
        registry.resolve_model("acme/missing")


def test_an_unknown_name_says_what_is_accepted():
    with pytest.raises(ModelNotFound, match="use 'nano', a checkpoint directory"):
        registry.resolve_model("no-such-model")


def test_open_engine_gives_a_native_engine_and_rejects_unknown_backends(tiny_model_dir):
    engine = registry.open_engine(str(tiny_model_dir), backend="native")
    assert isinstance(engine, NativeEngine)
    assert engine.info().backend == "native"
    with pytest.raises(BadRequest, match="unknown backend 'tpu'"):
        registry.open_engine(str(tiny_model_dir), backend="tpu")
