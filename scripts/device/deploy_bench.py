"""Device run for docs/deploy.md: decode speed of a MiMo-7B-shaped model (the official shape, random bf16
weights) with and without MTP, at batch 1 and batch 16, through vLLM (as `mimo serve --backend vllm` runs it)
and through our native CUDA engine. Both are driven through the same Engine interface and the same
measurement. Writes one JSON object per line.

Random weights decode garbage and their MTP layer agrees with the trunk by chance only, so acceptance is near
zero: the MTP figures here are MTP's cost per step (the draft pass and the wider verify pass), an upper bound on
its overhead. With a trained MiMo-7B (about 90 % acceptance for k = 1, docs/model-card.md and mimo-7b.md) the
speed-up follows from the same step times. vLLM is used when it is importable; the lent machines' image has
none and its wheel is far over what a run can carry, so there the native engine alone is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.api import GenerationRequest, SamplingParams  # noqa: E402

# MiMo-7B (mimo-7b.md, section 1): 36 layers, hidden 4096, FFN 11008, 32 heads, 8 KV heads, vocabulary 151680,
# RoPE base 640000, 32768 positions, QKV bias (Qwen2's), untied embeddings, one MTP layer.
MIMO_7B = dict(
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=36,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=151680,
    rope_theta=640000.0,
    max_position_embeddings=32768,
    rms_norm_eps=1e-5,
    num_nextn_predict_layers=1,
    tie_word_embeddings=False,
)
TINY = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
PROMPTS = (
    "def fibonacci(n):\n",
    "import numpy as np\n\n\nclass Matrix:\n",
    "def parse_args(argv):\n    parser = argparse.ArgumentParser()\n",
    "async def fetch(session, url):\n",
)


def random_checkpoint(path: Path, tokenizer_dir: Path, device: str, tiny: bool) -> Path:
    """A MiMo-7B-shaped checkpoint with random weights in bf16, and the given tokenizer (its ids are all below
    MiMo's vocabulary size, so every prompt is valid)."""
    import torch
    from transformers import AutoTokenizer

    from engine.model import MiMoConfig, MiMoForCausalLM

    if (path / "config.json").is_file():
        return path
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    shape = {**MIMO_7B, **(TINY | {"vocab_size": len(tokenizer), "max_position_embeddings": 1024} if tiny else {})}
    config = MiMoConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **shape)
    torch.manual_seed(0)
    with torch.device(device):
        model = MiMoForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return path


async def measure(engine, batch: int, tokens: int) -> dict:
    """``batch`` greedy requests at once, ``tokens`` each: aggregate and per-request decode rates, MTP counts."""
    sampling = SamplingParams(max_tokens=tokens, temperature=0.0)
    requests = [GenerationRequest(prompt=PROMPTS[i % len(PROMPTS)] * (1 + i // len(PROMPTS)), sampling=sampling)
                for i in range(batch)]  # fmt: skip
    from engine.api import collect

    await collect(engine, GenerationRequest(prompt=PROMPTS[0], sampling=SamplingParams(max_tokens=4)))  # warm-up
    started = time.perf_counter()
    results = await asyncio.gather(*(collect(engine, request) for request in requests))
    wall = time.perf_counter() - started
    generated = sum(r.usage.completion_tokens for r in results)
    proposed = sum(r.timings.mtp_drafts_proposed for r in results)
    accepted = sum(r.timings.mtp_drafts_accepted for r in results)
    return {
        "batch": batch,
        "tokens_per_request": tokens,
        "generated": generated,
        "wall_s": round(wall, 3),
        "aggregate_tokens_per_s": round(generated / wall, 1),
        "request_tokens_per_s_median": round(sorted(r.timings.tokens_per_s for r in results)[len(results) // 2], 1),
        "ttft_s_median": round(sorted(r.timings.time_to_first_token_s for r in results)[len(results) // 2], 4),
        "mtp_drafts_proposed": proposed,
        "mtp_acceptance": round(accepted / proposed, 4) if proposed else None,
    }


def open_engine(backend: str, path: Path, k: int, args):
    if backend == "vllm":
        from engine.vllm_engine import VllmEngine

        options = {} if args.device == "cpu" else {"gpu_memory_utilization": args.gpu_memory_utilization}
        return VllmEngine(path, dtype="bfloat16", max_model_len=args.max_model_len, num_speculative_tokens=k, **options)
    from engine.native import NativeEngine

    return NativeEngine(path, device=args.device, dtype="bfloat16", draft_tokens=k)


def run_backend(backend: str, path: Path, draft_tokens: list[int], args, out) -> None:
    for k in draft_tokens:
        started = time.perf_counter()
        try:
            engine = open_engine(backend, path, k, args)
        except Exception as error:  # keep the other runs' figures
            row = {"backend": backend, "draft_tokens": k, "error": f"{type(error).__name__}: {error}"[:500]}
            print(json.dumps(row), file=sys.stderr, flush=True)
            out.write(json.dumps(row) + "\n")
            continue
        load_s = time.perf_counter() - started
        try:
            for batch in args.batches:
                try:
                    figures = asyncio.run(measure(engine, batch, args.tokens))
                except Exception as error:
                    figures = {"batch": batch, "error": f"{type(error).__name__}: {error}"[:500]}
                row = {"backend": backend, "draft_tokens": k, "load_s": round(load_s, 1), **figures}
                print(json.dumps(row), file=sys.stderr, flush=True)
                out.write(json.dumps(row) + "\n")
                out.flush()
        finally:
            asyncio.run(engine.aclose())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokenizer", type=Path, default=Path("engine/assets/nano"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mimo-7b-random"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a tiny random shape (CPU tests of this script)")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 16])
    parser.add_argument("--vllm-draft-tokens", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--native-draft-tokens", nargs="*", type=int, default=[0, 1, 3])
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    parser.add_argument("--backends", nargs="*", default=["vllm", "native"])
    args = parser.parse_args()
    started = time.perf_counter()
    path = random_checkpoint(args.workdir, args.tokenizer, args.device, args.tiny)
    print(f"checkpoint ready in {time.perf_counter() - started:.0f} s: {path}", file=sys.stderr, flush=True)
    with args.out.open("a") as out:
        for backend in args.backends:
            if backend == "vllm" and importlib.util.find_spec("vllm") is None:
                row = {"backend": "vllm", "error": "vLLM is not installed on this machine; not measured"}
                print(json.dumps(row), file=sys.stderr, flush=True)
                out.write(json.dumps(row) + "\n")
                continue
            draft_tokens = args.vllm_draft_tokens if backend == "vllm" else args.native_draft_tokens
            run_backend(backend, path, draft_tokens, args, out)
    if os.environ.get("KEEP_CHECKPOINT") != "1":
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
