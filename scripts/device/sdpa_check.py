"""Hypothesis: bf16 decode on CUDA is slow because SDPA picks cuDNN attention, which builds a new plan for each
new key length (every decode step). Times plain decode steps with and without the cuDNN backend."""

import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

import engine.model  # noqa: F401
from engine.causal_model import CausalModel
from engine.model import MiMoConfig, MiMoForCausalLM
from engine.native_decode import DecodeSettings, SequenceDecoder

print(torch.__version__, torch.cuda.get_device_name(), flush=True)


def lm_for(dtype, layers=6, hidden=256, heads=4, kv=2):
    torch.manual_seed(0)
    config = MiMoConfig(
        vocab_size=8192,
        hidden_size=hidden,
        intermediate_size=3 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        num_nextn_predict_layers=1,
    )
    with torch.device("cuda"):
        return CausalModel(MiMoForCausalLM(config).to(dtype).eval())


def rate(lm, steps=48, use_mtp=False):
    decoder = SequenceDecoder(lm, list(range(10, 40)), DecodeSettings(use_mtp=use_mtp), 512)
    with torch.inference_mode():
        decoder.prefill()
        for _ in range(3):
            decoder.step()
        torch.cuda.synchronize()
        start = time.perf_counter()
        produced = sum(len(decoder.step()) for _ in range(steps))
        torch.cuda.synchronize()
    return produced / (time.perf_counter() - start)


NO_CUDNN = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
for shape in ({}, {"layers": 28, "hidden": 2048, "heads": 16, "kv": 4}):
    for dtype in (torch.bfloat16, torch.float32):
        lm = lm_for(dtype, **shape)
        default = rate(lm)
        with sdpa_kernel(NO_CUDNN):
            without = rate(lm)
            mtp = rate(lm, use_mtp=True)
        print(
            shape.get("layers", 6),
            dtype,
            f"default {default:.0f} tok/s | no cuDNN {without:.0f} tok/s | no cuDNN MTP {mtp:.0f} tok/s",
            flush=True,
        )
        del lm
        torch.cuda.empty_cache()

q = torch.randn(1, 16, 1, 128, device="cuda", dtype=torch.bfloat16)
for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):
    try:
        with sdpa_kernel([backend]):
            times = []
            for length in range(100, 140):
                k = torch.randn(1, 16, length, 128, device="cuda", dtype=torch.bfloat16)
                torch.cuda.synchronize()
                start = time.perf_counter()
                torch.nn.functional.scaled_dot_product_attention(q, k, k)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        print(backend, f"new-length call {1000 * sum(times) / len(times):.2f} ms", flush=True)
    except RuntimeError as error:
        print(backend, "unavailable:", str(error)[:80], flush=True)
