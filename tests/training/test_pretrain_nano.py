"""The shipped mimo-nano checkpoint meets its specification (read from the files, no model built)."""

from __future__ import annotations

import json
import math

from engine.registry import NANO_DIR
from engine.special_tokens import SPECIAL_TOKENS


def test_nano_is_small_bf16_and_in_mimo_layout():
    from safetensors import safe_open

    total_bytes = sum(path.stat().st_size for path in NANO_DIR.iterdir() if path.is_file())
    assert total_bytes <= 25 * 1024 * 1024
    config = json.loads((NANO_DIR / "config.json").read_text())
    assert config["architectures"] == ["MiMoForCausalLM"] and config["num_nextn_predict_layers"] == 1
    assert config["hidden_size"] // config["num_attention_heads"] >= 32
    with safe_open(str(NANO_DIR / "model.safetensors"), framework="pt") as weights:
        names = list(weights.keys())
        parameters = sum(math.prod(weights.get_slice(name).get_shape()) for name in names)
        dtypes = {weights.get_slice(name).get_dtype() for name in names}
    assert 5_000_000 <= parameters <= 15_000_000
    assert dtypes == {"BF16"}
    assert "model.mtp_layers.0.input_proj.weight" in names and "lm_head.weight" in names


def test_nano_tokenizer_has_our_special_tokens_first():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(NANO_DIR))
    assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(range(len(SPECIAL_TOKENS)))
    assert tokenizer.chat_template
