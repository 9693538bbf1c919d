"""Device run, one variant of mimo-nano: probe the step rate on this GPU (under the same contention as the real
run), size total_tokens to the time budget, pretrain with the nano preset, write report.json."""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

from training.config import load_pretrain_config, preset_path
from training.pretrain import (
    SUMMARY_NAME,
    RunOptions,
    autocast_dtype,
    build_model,
    build_optimizer,
    load_tokenizer,
    pretrain,
    train_step,
)

VARIANTS = {
    "A": {"num_hidden_layers": 6, "distill_weight": 1.0},
    "B": {"num_hidden_layers": 6, "distill_weight": 0.0},
    "C": {"num_hidden_layers": 4, "distill_weight": 1.0},
}


def configure(variant: str, data: Path):
    config = load_pretrain_config(preset_path("nano"), data)
    spec = VARIANTS[variant]
    model = dataclasses.replace(config.model, num_hidden_layers=spec["num_hidden_layers"])
    mtp = dataclasses.replace(config.mtp, distill_weight=spec["distill_weight"])
    return dataclasses.replace(config, model=model, mtp=mtp)


def probe_rate(config, device, steps: int) -> float:
    tokenizer = load_tokenizer(config.tokenizer)
    model = build_model(config.model, tokenizer, config.seed).to(device)
    model.mtp_distill_weight = config.mtp.distill_weight
    optimizer = build_optimizer(model, config.optim)
    stages = config.mixture.stages
    seq = max(stage.seq_len for stage in stages)
    ids = torch.randint(0, len(tokenizer), (config.batch_size, seq), device=device)
    autocast = autocast_dtype(config.precision, device)
    for index in range(steps + 3):
        if index == 3:
            torch.cuda.synchronize()
            start = time.perf_counter()
        train_step(model, optimizer, ids, config.optim.grad_clip, autocast)
    torch.cuda.synchronize()
    rate = steps * ids.numel() / (time.perf_counter() - start)
    del model, optimizer
    torch.cuda.empty_cache()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget", type=float, required=True, help="seconds of training")
    parser.add_argument("--probe-steps", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=0, help="override the preset's (CPU tests)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    config = configure(args.variant, args.data)
    if args.batch_size:
        config = dataclasses.replace(config, batch_size=args.batch_size)
    rate = probe_rate(config, device, args.probe_steps) if device.type == "cuda" else 2000.0
    step_tokens = config.batch_size * max(stage.seq_len for stage in config.mixture.stages)
    total = max(step_tokens, int(rate * args.budget * 0.9) // step_tokens * step_tokens)
    config = dataclasses.replace(config, total_tokens=total, checkpoint_every=10**9)
    print(f"[{args.variant}] probe {rate:,.0f} tok/s -> total_tokens {total:,}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = pretrain(config, RunOptions(out_dir=args.out, show_progress=False, tensorboard=False))
    history = result.state.history
    report = {
        "variant": args.variant,
        "spec": VARIANTS[args.variant],
        "probe_tokens_per_s": rate,
        "total_tokens": total,
        "steps": result.state.step,
        "train_seconds": result.state.seconds,
        "wall_seconds": time.perf_counter() - started,
        "batch_size": config.batch_size,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "parameters": json.loads((args.out / SUMMARY_NAME).read_text())["parameters"],
        "history": [h for h in history if h["step"] % 25 == 0 or h is history[-1]],
    }
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    last = history[-1]
    print(
        f"[{args.variant}] done: {result.state.step} steps, {result.state.tokens_seen:,} tokens in "
        f"{result.state.seconds:.0f} s; loss {last['main_loss']:.3f} / mtp {last['mtp_loss']:.3f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
