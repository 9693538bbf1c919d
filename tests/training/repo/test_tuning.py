"""LoRA through PEFT or full fine-tuning, the MTP layer tuned or frozen, and the exports."""

from __future__ import annotations

import json

import pytest
import torch

from training.errors import UserError
from training.repo import tuning
from training.repo.trainer import TrainOptions, build_optimizer


@pytest.fixture
def base(tiny_model_dir):
    return tuning.load_base(tiny_model_dir)


def _step(model) -> None:
    """One optimiser step on random tokens, the way the trainer takes one."""
    from training.config import OptimConfig
    from training.pretrain import build_optimizer, train_step

    tuning.causal_lm(model).mtp_loss_weight = 1.0
    optimizer = build_optimizer(model, OptimConfig(lr=1e-2, weight_decay=0.0))
    train_step(model, optimizer, torch.randint(9, 400, (2, 32)), grad_clip=1.0)


def test_lora_adapts_the_trunk_and_with_mtp_tune_trains_the_draft_layer_in_full(base):
    model = tuning.prepare_model(base, tuning.TuneSpec(method="lora", mtp="tune", lora_rank=4))
    trained = [name for name, p in model.named_parameters() if p.requires_grad]
    trunk = [name for name in trained if ".mtp_layers." not in name]
    assert trunk and all("lora_" in name for name in trunk) and any(".layers.1.mlp.down_proj" in n for n in trunk)
    mtp = [name for name, p in model.named_parameters() if ".mtp_layers." in name]
    assert set(mtp) <= set(trained) and not any("lora_" in name for name in mtp)
    assert not any("embed_tokens" in name or "lm_head" in name for name in trained)
    optimizer = build_optimizer(model, TrainOptions(lr=3e-3))
    scales = {id(p): group["lr_scale"] for group in optimizer.param_groups for p in group["params"]}
    named = dict(model.named_parameters())
    assert {scales[id(named[n])] for n in mtp} == {1 / 3} and {scales[id(named[n])] for n in trunk} == {1.0}


def test_mtp_freeze_leaves_the_draft_layer_bit_identical(tiny_model_dir):
    for method in ("lora", "full"):
        model = tuning.prepare_model(tuning.load_base(tiny_model_dir), tuning.TuneSpec(method=method, mtp="freeze"))
        mtp_before = {n: p.detach().clone() for n, p in model.named_parameters() if ".mtp_layers." in n}
        trunk_before = {n: p.detach().clone() for n, p in model.named_parameters() if ".layers.0." in n}
        _step(model)
        mtp_after = {n: p for n, p in model.named_parameters() if ".mtp_layers." in n}
        assert all(torch.equal(mtp_before[n], mtp_after[n]) for n in mtp_before), method
        if method == "full":
            changed = [
                n for n, p in model.named_parameters() if n in trunk_before and not torch.equal(p, trunk_before[n])
            ]
            assert changed


def test_lora_export_writes_the_adapter_and_a_merged_model_that_computes_the_same(base, tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from training.completion_model import CompletionModel

    model = tuning.prepare_model(base, tuning.TuneSpec(method="lora", lora_rank=4))
    _step(model)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    paths = tuning.export(model.eval(), tokenizer, tuning.TuneSpec(method="lora"), tiny_model_dir, tmp_path, "float32")
    adapter = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tiny_model_dir) and adapter["r"] == 4
    merged = CompletionModel.load(paths["model"])
    ids = list(range(20, 60))
    with torch.inference_mode():
        expected = tuning.causal_lm(model)(input_ids=torch.tensor([ids])).logits
        actual = merged.model(input_ids=torch.tensor([ids])).logits
    assert torch.allclose(expected, actual, atol=1e-4)
    assert not any("lora" in key for key in merged.model.state_dict())


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="method"):
        tuning.TuneSpec(method="qlora")
    with pytest.raises(UserError, match="--mtp"):
        tuning.TuneSpec(mtp="sometimes")
    with pytest.raises(UserError, match="--lora-rank"):
        tuning.TuneSpec(lora_rank=0)
    with pytest.raises(UserError, match="--lora-targets"):
        tuning.TuneSpec(lora_targets=("q_proj; rm -rf",))


def test_lora_targets_that_match_nothing_are_a_user_error(base):
    with pytest.raises(UserError, match="--lora-targets"):
        tuning.prepare_model(base, tuning.TuneSpec(method="lora", lora_targets=("no_such_proj",)))
