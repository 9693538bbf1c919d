"""The MiMo model: the official checkpoint layout, the MTP loss path, and checkpoint round trips."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from engine.model import MiMoConfig, MiMoForCausalLM

# MiMo-7B (technical report §2.3 and the released config.json, see shared/reference/mimo-7b.md).
MIMO_7B = dict(
    vocab_size=151680,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=36,
    num_attention_heads=32,
    num_key_value_heads=8,
    num_nextn_predict_layers=1,
    max_position_embeddings=32768,
    rope_theta=640000,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
)


def official_mimo_7b_shapes() -> dict[str, tuple[int, ...]]:
    """The parameter names and shapes of the released MiMo-7B checkpoints, written out from the reference."""
    hidden, ffn, vocab, kv = 4096, 11008, 151680, 8 * 128

    def decoder(prefix: str) -> dict[str, tuple[int, ...]]:
        return {
            f"{prefix}.input_layernorm.weight": (hidden,),
            f"{prefix}.post_attention_layernorm.weight": (hidden,),
            f"{prefix}.self_attn.q_proj.weight": (hidden, hidden),
            f"{prefix}.self_attn.q_proj.bias": (hidden,),
            f"{prefix}.self_attn.k_proj.weight": (kv, hidden),
            f"{prefix}.self_attn.k_proj.bias": (kv,),
            f"{prefix}.self_attn.v_proj.weight": (kv, hidden),
            f"{prefix}.self_attn.v_proj.bias": (kv,),
            f"{prefix}.self_attn.o_proj.weight": (hidden, hidden),
            f"{prefix}.mlp.gate_proj.weight": (ffn, hidden),
            f"{prefix}.mlp.up_proj.weight": (ffn, hidden),
            f"{prefix}.mlp.down_proj.weight": (hidden, ffn),
        }

    shapes = {
        "model.embed_tokens.weight": (vocab, hidden),
        "model.norm.weight": (hidden,),
        "lm_head.weight": (vocab, hidden),
    }
    for i in range(36):
        shapes |= decoder(f"model.layers.{i}")
    mtp = "model.mtp_layers.0"
    shapes |= decoder(mtp)
    shapes |= {f"{mtp}.{norm}.weight": (hidden,) for norm in ("token_layernorm", "hidden_layernorm", "final_layernorm")}
    shapes[f"{mtp}.input_proj.weight"] = (hidden, 2 * hidden)
    return shapes


def test_state_dict_matches_the_official_mimo_7b_layout_exactly():
    with torch.device("meta"):  # no 7B weights in memory
        model = MiMoForCausalLM(MiMoConfig(**MIMO_7B))
    ours = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    expected = official_mimo_7b_shapes()
    assert sorted(set(ours) - set(expected)) == []
    assert sorted(set(expected) - set(ours)) == []
    assert ours == expected


def tiny_config(**overrides) -> MiMoConfig:
    values = dict(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_nextn_predict_layers=1,
        max_position_embeddings=128,
        tie_word_embeddings=False,
    )
    return MiMoConfig(**(values | overrides))


def test_loss_is_main_plus_weighted_mtp_and_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = MiMoForCausalLM(tiny_config())
    ids = torch.randint(0, 97, (2, 12))
    model.mtp_loss_weight = 0.3
    out = model(input_ids=ids, labels=ids)
    assert torch.allclose(out.loss, out.main_loss + 0.3 * out.mtp_loss)
    out.loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_mtp_layer_reads_pre_norm_hidden_then_next_token_embedding_and_predicts_two_ahead():
    torch.manual_seed(0)
    model = MiMoForCausalLM(tiny_config()).eval()
    ids = torch.randint(0, 97, (1, 10))
    layer = model.model.mtp_layers[0]
    seen = []
    handle = layer.input_proj.register_forward_hook(lambda module, args, output: seen.append(args[0]))
    out = model(input_ids=ids, labels=ids)
    handle.remove()

    h = model.model(input_ids=ids).pre_norm_hidden_state  # before the final norm
    e = model.model.embed_tokens(torch.roll(ids, -1, dims=1))  # token t+1 at position t
    expected_input = torch.cat([layer.hidden_layernorm(h), layer.token_layernorm(e)], dim=-1)  # [hidden, embed]
    assert torch.allclose(seen[0], expected_input, atol=1e-6)
    deepseek_order = torch.cat([layer.token_layernorm(e), layer.hidden_layernorm(h)], dim=-1)
    assert not torch.allclose(seen[0], deepseek_order)
    # The MTP target at position t is token t+2.
    expected_loss = torch.nn.functional.cross_entropy(out.mtp_logits[0][0, :-2], ids[0, 2:])
    assert torch.allclose(out.mtp_loss, expected_loss, atol=1e-6)


def test_distilled_mtp_target_is_the_main_models_own_prediction_of_the_same_token():
    torch.manual_seed(0)
    model = MiMoForCausalLM(tiny_config())
    ids = torch.randint(0, 97, (1, 10))
    labels = ids.clone()
    labels[0, 8:] = -100
    model.mtp_distill_weight = 1.0
    out = model(input_ids=ids, labels=labels)
    # MTP at position t predicts token t+2; the main model predicts the same token at position t+1.
    teacher = out.logits[0, 1:7].detach().softmax(dim=-1)
    expected = -(teacher * out.mtp_logits[0][0, :6].log_softmax(dim=-1)).sum(dim=-1).mean()
    assert torch.allclose(out.mtp_loss, expected, atol=1e-5)

    data_loss = torch.nn.functional.cross_entropy(out.mtp_logits[0][0, :6], ids[0, 2:8])
    model.mtp_distill_weight = 0.25
    mixed = model(input_ids=ids, labels=labels).mtp_loss
    assert torch.allclose(mixed, 0.75 * data_loss + 0.25 * expected, atol=1e-5)

    model.mtp_distill_weight, model.mtp_distill_temperature = 1.0, 0.5  # a sharper teacher
    sharp = (out.logits[0, 1:7].detach() / 0.5).softmax(dim=-1)
    expected_sharp = -(sharp * out.mtp_logits[0][0, :6].log_softmax(dim=-1)).sum(dim=-1).mean()
    assert torch.allclose(model(input_ids=ids, labels=labels).mtp_loss, expected_sharp, atol=1e-5)
    assert not torch.allclose(expected_sharp, expected, atol=1e-3)


def test_distillation_trains_the_draft_head_not_the_main_models_prediction():
    torch.manual_seed(0)
    model = MiMoForCausalLM(tiny_config())
    ids = torch.randint(0, 97, (2, 12))
    model.mtp_distill_weight = 1.0
    model(input_ids=ids, labels=ids).mtp_loss.backward()
    # The teacher is detached: the MTP term gives the final norm (which only the main logits read) no gradient.
    assert model.model.norm.weight.grad is None or not model.model.norm.weight.grad.abs().sum() > 0
    assert model.model.mtp_layers[0].final_layernorm.weight.grad.abs().sum() > 0


def test_padding_labels_are_ignored_by_both_losses():
    torch.manual_seed(0)
    model = MiMoForCausalLM(tiny_config())
    ids = torch.randint(0, 97, (1, 10))
    labels = ids.clone()
    labels[0, 6:] = -100
    out = model(input_ids=ids, labels=labels)
    main = torch.nn.functional.cross_entropy(out.logits[0, :5], ids[0, 1:6])
    assert torch.allclose(out.main_loss, main, atol=1e-6)


def test_save_and_load_round_trip_keeps_weights_and_outputs(tmp_path):
    torch.manual_seed(0)
    model = MiMoForCausalLM(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["MiMoForCausalLM"]
    assert config["model_type"] == "mimo" and config["num_nextn_predict_layers"] == 1

    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is MiMoForCausalLM
    ids = torch.randint(0, 97, (1, 9))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    assert torch.equal(model(ids).logits, loaded(ids).logits)


@pytest.mark.slow
def test_saved_checkpoint_loads_with_plain_transformers_and_trust_remote_code(tmp_path):
    """Without mimo-code imported, `auto_map` plus the copied model files are enough (as for the official repos)."""
    MiMoForCausalLM(tiny_config()).save_pretrained(tmp_path)
    script = (
        "import sys; from transformers import AutoModelForCausalLM\n"
        f"m = AutoModelForCausalLM.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)\n"
        "assert 'engine' not in sys.modules, 'mimo-code was imported'\n"
        "print(type(m).__name__, len(m.model.mtp_layers))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["MiMoForCausalLM", "1"]


def test_peft_lora_wraps_the_model_and_trains_only_adapters():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(MiMoForCausalLM(tiny_config()), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    ids = torch.randint(0, 97, (1, 8))
    model(input_ids=ids, labels=ids).loss.backward()
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in name for name in trained)
    assert any("mtp_layers.0.self_attn.q_proj.lora_A" in name for name in trained)


@pytest.mark.slow
def test_shipped_nano_loads_with_plain_transformers_and_trust_remote_code(tmp_path):
    """The asset's model files are links to engine/model, so they cannot drift; a copy (as a wheel holds it) loads."""
    import shutil

    from engine.registry import NANO_DIR

    copy = shutil.copytree(NANO_DIR, tmp_path / "nano")  # follows the links, as building a wheel does
    assert not (copy / "modeling_mimo.py").is_symlink()
    script = (
        "import sys; from transformers import AutoModelForCausalLM\n"
        f"m = AutoModelForCausalLM.from_pretrained({str(copy)!r}, trust_remote_code=True)\n"
        "assert 'engine' not in sys.modules, 'mimo-code was imported'\n"
        "print(type(m).__name__, len(m.model.mtp_layers))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["MiMoForCausalLM", "1"]
