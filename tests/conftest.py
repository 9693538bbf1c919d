"""Shared fixtures: a tiny random MiMo-layout checkpoint with a locally trained tokenizer (no downloads)."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest


def _stdlib_sample(limit_bytes: int = 400_000) -> list[str]:
    """A few hundred KB of real Python from the standard library, to train a test tokenizer on."""
    texts, total = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="ignore")
        texts.append(text)
        total += len(text)
        if total > limit_bytes:
            break
    return texts


def build_tiny_mimo(out_dir: Path, *, vocab_size: int = 512, mtp_layers: int = 1, seed: int = 0) -> Path:
    """Saves a random MiMo checkpoint (head_dim 32, as vLLM's CPU attention needs) plus tokenizer to out_dir."""
    import torch
    from transformers import AutoTokenizer

    from engine.model import MiMoConfig, MiMoForCausalLM
    from training.tokenizer import save_hf, train_bpe

    save_hf(train_bpe(_stdlib_sample(), vocab_size=vocab_size), out_dir)  # the same code as `mimo train tokenizer`
    tokenizer = AutoTokenizer.from_pretrained(out_dir)

    torch.manual_seed(seed)
    config = MiMoConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_nextn_predict_layers=mtp_layers,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    MiMoForCausalLM(config).save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random MiMo checkpoint with one MTP layer and a 512-token BPE tokenizer, built once per session."""
    return build_tiny_mimo(tmp_path_factory.mktemp("tiny-mimo"))
