"""`mimo train sft`: completion-only labels ending in end-of-text, the MTP layer tuned or frozen, the export."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from training.rl.config import SFTConfig
from training.rl.sft import IGNORE, PadCollator, run_sft, sft_examples, tokenize_example
from training.tasks import load_tasks


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from training.rl.policy import load_policy

    return load_policy(str(tiny_model_dir))[1]


def test_only_the_completion_and_its_end_carry_a_loss(tokenizer):
    task = load_tasks()[0]
    (example,) = sft_examples([task])
    row = tokenize_example(example, tokenizer, max_length=512)
    prompt = tokenizer(task.model_prompt)["input_ids"]
    assert row["input_ids"][: len(prompt)] == prompt and row["labels"][: len(prompt)] == [IGNORE] * len(prompt)
    assert row["labels"][len(prompt) :] == row["input_ids"][len(prompt) :]
    assert row["input_ids"][-1] == tokenizer.eos_token_id
    assert tokenizer.decode(row["input_ids"][len(prompt) : -1]) == task.reference_completion
    assert len(tokenize_example(example, tokenizer, max_length=10)["labels"]) == 10
    batch = PadCollator(tokenizer.pad_token_id)([row, tokenize_example(example, tokenizer, 10)])
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert batch["attention_mask"][1].sum() == 10 and (batch["labels"][1, 10:] == IGNORE).all()


@pytest.mark.parametrize("mtp", ["tune", "freeze"])
def test_sft_tunes_or_freezes_the_mtp_layer_and_exports(tiny_model_dir, tmp_path, mtp):
    config = SFTConfig(model=str(tiny_model_dir), tasks="project", epochs=1, batch_size=4, learning_rate=1e-3,
                       threads=1, mtp=mtp)  # fmt: skip
    model_dir = run_sft(config, tmp_path / "sft", show_progress=False)
    before = load_file(str(tiny_model_dir / "model.safetensors"))
    after = load_file(str(model_dir / "model.safetensors"))
    moved = {name for name in before if not torch.equal(before[name], after[name].to(before[name].dtype))}
    mtp_names = {name for name in before if ".mtp_layers." in name}
    assert moved - mtp_names  # the trunk learned
    assert (moved & mtp_names) if mtp == "tune" else not (moved & mtp_names)
    assert (tmp_path / "sft/tensorboard").is_dir() and (model_dir / "tokenizer.json").is_file()
