"""The native engine's decode forward (``engine.lean_forward``) and its weight kernels, held to the model
definition: the same logits and MTP logits as ``MiMoForCausalLM``, for every kernel, fed in chunks as decoding
feeds it."""

from __future__ import annotations

import pytest
import torch

from engine.linear_kernels import KERNELS, fp16_weights_supported, fused_linear

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU_KERNELS = ["transposed", "device"] + (["fp16-weights"] if fp16_weights_supported() else [])


def load(model_dir, bf16_weights: bool = False):
    from transformers import AutoModelForCausalLM

    import engine.model  # noqa: F401

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    if bf16_weights:  # what a checkpoint stored in bfloat16 holds, in float32
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.copy_(parameter.bfloat16().float())
    return model


@pytest.mark.parametrize("kernel", CPU_KERNELS)
def test_each_kernel_computes_a_linear_layer(kernel):
    generator = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(96, 200)
    with torch.no_grad():
        linear.weight.copy_((torch.randn(200, 96, generator=generator) * 0.05).bfloat16().float())
    x = torch.randn(4, 96, generator=generator)
    expected = torch.nn.functional.linear(x, linear.weight, linear.bias).detach()
    fused = KERNELS[kernel](linear.weight.detach(), linear.bias.detach())
    rows = fused(x)
    assert torch.allclose(rows, expected, atol=1e-4)
    for i in range(4):  # a row alone (a plain step) and among others (verifying drafts)
        alone = fused(x[i : i + 1].contiguous())[0]
        assert torch.allclose(alone, rows[i], atol=1e-6)
        if kernel == "fp16-weights":  # fbgemm's rows don't depend on each other at all
            assert torch.equal(alone, rows[i])


def test_fused_projections_compute_each_part_and_the_modules_share_their_storage():
    torch.manual_seed(0)
    q, k, v = torch.nn.Linear(32, 32), torch.nn.Linear(32, 16), torch.nn.Linear(32, 16)
    x = torch.randn(3, 32)
    with torch.no_grad():
        expected = torch.cat([q(x), k(x), v(x)], dim=-1)
        fused = fused_linear([q, k, v], "transposed")
        assert torch.allclose(fused(x), expected, atol=1e-6)
        # The modules still compute their part, now from views of the fused copy: weights are held once.
        assert torch.allclose(k(x), expected[:, 32:48], atol=1e-6)
    storage = fused.weight_t.untyped_storage().data_ptr()
    assert all(m.weight.untyped_storage().data_ptr() == storage for m in (q, k, v))


@pytest.mark.parametrize("kernel", CPU_KERNELS)
def test_trunk_and_mtp_logits_match_the_model_when_fed_in_chunks(tiny_model_dir, kernel):
    from engine.causal_model import CausalModel

    fp16 = kernel == "fp16-weights"
    model = load(tiny_model_dir, bf16_weights=fp16)
    ids = list(range(10, 40))
    with torch.inference_mode():
        reference = model(input_ids=torch.tensor([ids]))
        hidden = reference.pre_norm_hidden_state
        mtp_reference = model.mtp_logits(0, model.model.mtp_forward(0, hidden[:, :29], torch.tensor([ids[1:30]])))
        lm = CausalModel(model, kernel)
        lm.restrict_drafts(model.config.vocab_size)
        cache, mtp_cache = lm.new_cache(64), lm.new_cache(64, layers=1)
        logits = [lm.trunk(ids[a:b], cache, logits_for=b - a)[0] for a, b in ((0, 20), (20, 21), (21, 25), (25, 30))]
        draft_first, _ = lm.mtp(hidden[:, :20], ids[1:21], mtp_cache)  # pairs (h_t, x_{t+1}), t = 0..19
        draft_last, out = lm.mtp(hidden[:, 20:29], ids[21:30], mtp_cache)  # t = 20..28, reading the cached ones
    tolerance = 2e-3 if fp16 else 1e-5  # fp16-weights: fp32 sums in another order, same weights
    assert torch.allclose(torch.cat(logits), reference.logits[0], atol=tolerance)
    assert torch.equal(torch.cat(logits).argmax(-1), reference.logits[0].argmax(-1))
    assert torch.allclose(draft_first[0], mtp_reference[0, 19], atol=tolerance)
    assert torch.allclose(draft_last[0], mtp_reference[0, 28], atol=tolerance)
    assert out.shape == (1, 9, model.config.hidden_size)


def test_the_engine_picks_fp16_weights_only_for_checkpoints_stored_in_16_bits(tiny_model_dir, tmp_path):
    from engine.native import NativeEngine

    stored_fp32 = NativeEngine(tiny_model_dir, threads=1)
    assert stored_fp32.lm.kernel == "transposed"  # fp16 would round its weights
    bf16_dir = tmp_path / "bf16"
    load(tiny_model_dir).to(torch.bfloat16).save_pretrained(bf16_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (bf16_dir / name).write_bytes((tiny_model_dir / name).read_bytes())
    stored_bf16 = NativeEngine(bf16_dir, threads=1)
    assert stored_bf16.lm.kernel == ("fp16-weights" if fp16_weights_supported() else "transposed")
    assert NativeEngine(bf16_dir, threads=1, kernel="transposed").lm.kernel == "transposed"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kernel": "avx"}, "unknown kernel 'avx'"),
        ({"draft_tokens": 9}, "draft_tokens must be between 0 and 8"),
        ({"kernel": "fp16-weights", "dtype": "bfloat16"}, "computes in float32, not bfloat16"),
    ],
)
def test_bad_engine_options_are_refused_with_the_allowed_values(tiny_model_dir, options, message):
    from engine.api import BadRequest
    from engine.native import NativeEngine

    with pytest.raises(BadRequest, match=message):
        NativeEngine(tiny_model_dir, threads=1, **options)


@pytest.mark.parametrize("kernel", CPU_KERNELS)
def test_other_checkpoints_get_the_kernels_through_their_own_forward(tiny_model_dir, tmp_path, kernel):
    """A plain Qwen2 checkpoint decodes through transformers' forward; the engine swaps its linear layers for
    the kernel, and the logits stay those of the unswapped model."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from engine.causal_model import CausalModel
    from engine.linear_kernels import KernelLinear

    vocab = len(AutoTokenizer.from_pretrained(tiny_model_dir))
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # what a checkpoint stored in bfloat16 holds
            parameter.copy_(parameter.bfloat16().float())
    ids = torch.tensor([list(range(10, 40))])
    with torch.inference_mode():
        before = model(input_ids=ids).logits
        lm = CausalModel(model, kernel)
        after = model(input_ids=ids).logits
    swapped = kernel != "device"
    assert any(isinstance(m, KernelLinear) for m in model.modules()) == swapped
    assert not swapped or not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert torch.allclose(before, after, atol=2e-3 if kernel == "fp16-weights" else 1e-5)
    assert lm.kernel == kernel
