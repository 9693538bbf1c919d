"""Device run: `mimo bench decode`'s measurement on CUDA, native backend, for a larger random MiMo-layout model
and for the freshly trained nano variants. Writes one JSON object per line to the file given."""

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

import engine.model  # noqa: F401
from engine.bench import bench_decode
from engine.model import MiMoConfig, MiMoForCausalLM

# A ~1.3 B MiMo-layout shape (Qwen2-1.5B-like trunk, MiMo's single MTP layer); vocabulary of nano's tokenizer.
RANDOM_SHAPE = dict(
    hidden_size=2048,
    intermediate_size=5632,
    num_hidden_layers=28,
    num_attention_heads=16,
    num_key_value_heads=4,
    num_nextn_predict_layers=1,
    max_position_embeddings=4096,
)

TINY_SHAPE = dict(
    hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
)


def random_checkpoint(path: Path, tokenizer_dir: Path, device: str, tiny: bool) -> Path:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    shape = {**RANDOM_SHAPE, **(TINY_SHAPE if tiny else {})}
    config = MiMoConfig(
        vocab_size=len(tokenizer),
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **shape,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = MiMoForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--nano", nargs="*", default=[])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a small random shape (CPU tests of this script)")
    parser.add_argument("--random-dtypes", nargs="*", default=["bfloat16", "float32"])
    parser.add_argument("--draft-tokens", nargs="*", type=int, default=[1, 3], help="k values to bench, each")
    args = parser.parse_args()
    runs = []
    started = time.perf_counter()
    random_dir = random_checkpoint(Path("/tmp/random-1.3b"), args.tokenizer, args.device, args.tiny)
    print(f"random model saved in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    models = [(str(random_dir), dtype) for dtype in args.random_dtypes]
    models += [(path, dtype) for path in args.nano for dtype in ("bfloat16", "float32")]
    runs = [(model, dtype, k) for model, dtype in models for k in args.draft_tokens]
    with args.out.open("a") as out:
        for model, dtype, k in runs:
            t0 = time.perf_counter()
            try:
                result = asyncio.run(
                    bench_decode(model, "native", args.tokens, device=args.device, dtype=dtype, draft_tokens=k)
                )
                row = {"model": model, "dtype": dtype, **asdict(result), "seconds": time.perf_counter() - t0}
            except Exception as error:  # keep the other runs' figures
                row = {"model": model, "dtype": dtype, "draft_tokens": k, "error": repr(error)}
            summary = ("model", "dtype", "draft_tokens", "speedup", "identical", "error")
            print(json.dumps({key: row.get(key) for key in summary}), file=sys.stderr, flush=True)
            out.write(json.dumps(row) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
