"""Device run: the native engine's decode path on CUDA, held to the model definition as tests/engine holds it on
CPU. For a checkpoint: (1) `CausalModel` (engine.lean_forward) fed in chunks gives MiMoForCausalLM's logits and MTP
logits; (2) NativeEngine's greedy decoding, plain and with k = 3 MTP drafts, gives the tokens of uncached
transformers greedy decoding. Prints and appends one JSON object per dtype to --out."""

import argparse
import asyncio
import json
import sys
from pathlib import Path

import torch

import engine.model  # noqa: F401
from engine.api import GenerationRequest, SamplingParams
from engine.causal_model import CausalModel
from engine.native import NativeEngine

PROMPTS = ["def add(a, b):\n", "import os\n\nclass Path", "for i in range(", "    def __init__(self, name):\n"]


def logits_check(model, kernel: str) -> dict:
    ids = list(range(10, 40))
    device = model.device
    with torch.inference_mode():
        reference = model(input_ids=torch.tensor([ids], device=device))
        hidden = reference.pre_norm_hidden_state
        next_ids = torch.tensor([ids[1:30]], device=device)
        mtp_reference = model.mtp_logits(0, model.model.mtp_forward(0, hidden[:, :29], next_ids))
        lm = CausalModel(model, kernel)
        lm.restrict_drafts(model.config.vocab_size)
        cache, mtp_cache = lm.new_cache(64), lm.new_cache(64, layers=1)
        logits = [lm.trunk(ids[a:b], cache, logits_for=b - a)[0] for a, b in ((0, 20), (20, 21), (21, 25), (25, 30))]
        draft, _ = lm.mtp(hidden[:, :29], ids[1:30], mtp_cache)
    logits = torch.cat(logits).float()
    expected = reference.logits[0].float()
    return {
        "trunk_max_abs_diff": float((logits - expected).abs().max()),
        "trunk_argmax_equal": bool(torch.equal(logits.argmax(-1), expected.argmax(-1))),
        "mtp_max_abs_diff": float((draft[0].float() - mtp_reference[0, 28].float()).abs().max()),
    }


def reference_greedy(model, tokenizer, prompt: str, max_tokens: int, stop_ids, banned_ids) -> list[int]:
    """Uncached greedy decoding through transformers; like the engine, it never picks a FIM sentinel."""
    ids = tokenizer.encode(prompt)
    banned = torch.tensor(banned_ids, dtype=torch.long, device=model.device)
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(max_tokens):
            logits = model(torch.tensor([ids + out], device=model.device)).logits[0, -1]
            token = int(logits.index_fill(-1, banned, float("-inf")).argmax())
            if token in stop_ids:
                break
            out.append(token)
    return out


async def engine_tokens(engine: NativeEngine, prompt: str, max_tokens: int, use_mtp: bool) -> list[int]:
    request = GenerationRequest(prompt=prompt, sampling=SamplingParams(max_tokens=max_tokens), use_mtp=use_mtp)
    return [t async for chunk in engine.generate(request) for t in chunk.token_ids]


def check(model_dir: str, device: str, dtype: str, max_tokens: int) -> dict:
    engine = NativeEngine(model_dir, device=device, dtype=dtype, draft_tokens=3)
    try:
        row = {"model": model_dir, "device": device, "dtype": dtype, "kernel": engine.lm.kernel}
        row |= logits_check(engine.lm.model, "device")
        matches = []
        for prompt in PROMPTS:
            expected = reference_greedy(
                engine.lm.model, engine.tokenizer, prompt, max_tokens, engine.stop_ids, engine.fim_sentinel_ids
            )
            plain = asyncio.run(engine_tokens(engine, prompt, max_tokens, use_mtp=False))
            mtp = asyncio.run(engine_tokens(engine, prompt, max_tokens, use_mtp=True))
            matches.append({"plain": plain == expected, "mtp": mtp == expected, "tokens": len(expected)})
        row["greedy_matches_transformers"] = matches
        return row
    finally:
        asyncio.run(engine.aclose())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--dtypes", nargs="*", default=["float32", "bfloat16"])
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    with args.out.open("a") as out:
        for dtype in args.dtypes:
            try:
                row = check(args.model, args.device, dtype, args.tokens)
            except Exception as error:  # keep the other dtype's figures
                row = {"model": args.model, "dtype": dtype, "error": repr(error)}
            print(json.dumps(row), file=sys.stderr, flush=True)
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
