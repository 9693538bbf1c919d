"""Device run, one variant of mimo-nano's phase 2 (continued pretraining, the `nano-continue` preset): probe the
step rate under the same contention as the real run, size total_tokens to the time budget, train from the shipped
nano, and measure held-out MTP acceptance along the way (teacher-forced, as `mimo eval completion` counts it).
Writes report.json beside the run."""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

from scripts.device.nano_gpu import probe_rate  # run with PYTHONPATH at the repository root
from training.completion_model import CompletionModel
from training.config import load_pretrain_config, preset_path
from training.evaluate import EvalOptions
from training.pretrain import SUMMARY_NAME, RunOptions, load_tokenizer, pretrain

VARIANTS = {  # λ (MTP loss weight, constant) and τ (teacher temperature of the draft head's distillation)
    "A": {"loss_weight": 0.3, "distill_temperature": 1.0},
    "B": {"loss_weight": 1.0, "distill_temperature": 1.0},
    "C": {"loss_weight": 1.0, "distill_temperature": 0.5},
}


def configure(variant: str, data: Path, init_from: str, batch_size: int):
    config = load_pretrain_config(preset_path("nano-continue"), data)
    spec = VARIANTS[variant]
    mtp = dataclasses.replace(
        config.mtp,
        loss_weight=spec["loss_weight"],
        late_loss_weight=spec["loss_weight"],
        distill_temperature=spec["distill_temperature"],
    )
    return dataclasses.replace(config, mtp=mtp, init_from=init_from, batch_size=batch_size or config.batch_size)


class AcceptanceCurve:
    """Held-out MTP acceptance every `every` steps (float32, on the training device)."""

    def __init__(self, tokenizer, texts: list[str], every: int, positions: int):
        self.tokenizer, self.texts, self.every = tokenizer, texts, every
        self.options = EvalOptions(acceptance_tokens=positions)
        self.points: list[dict] = []

    def measure(self, model) -> float:
        was_training = model.training
        model.eval()
        with torch.autocast(model.device.type, enabled=False):
            accepted, positions = CompletionModel(model, self.tokenizer).mtp_acceptance(self.texts, self.options)
        model.train(was_training)
        return accepted / positions

    def __call__(self, model, state) -> None:
        if state.step % self.every == 0 or state.step == 1:
            self.points.append(
                {
                    "step": state.step,
                    "tokens": state.tokens_seen,
                    "seconds": round(state.seconds, 1),
                    "acceptance": self.measure(model),
                }
            )
            print(f"  step {state.step}: acceptance {self.points[-1]['acceptance']:.4f}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--init-from", required=True)
    parser.add_argument("--heldout", type=Path, required=True, help="heldout.jsonl")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget", type=float, required=True, help="seconds of training")
    parser.add_argument("--probe-steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=0, help="override the preset's")
    parser.add_argument("--curve-points", type=int, default=8)
    parser.add_argument("--curve-positions", type=int, default=16_384)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    config = configure(args.variant, args.data, args.init_from, args.batch_size)
    rate = probe_rate(config, device, args.probe_steps) if device.type == "cuda" else 2000.0
    step_tokens = config.batch_size * max(stage.seq_len for stage in config.mixture.stages)
    total = max(step_tokens, int(rate * args.budget * 0.9) // step_tokens * step_tokens)
    config = dataclasses.replace(config, total_tokens=total, checkpoint_every=10**9)
    print(f"[{args.variant}] probe {rate:,.0f} tok/s -> total_tokens {total:,}", file=sys.stderr, flush=True)
    texts = [json.loads(line)["text"] for line in args.heldout.read_text().splitlines() if line.strip()]
    curve = AcceptanceCurve(
        load_tokenizer(config.tokenizer), texts, max(1, total // step_tokens // args.curve_points), args.curve_positions
    )
    started = time.perf_counter()
    result = pretrain(config, RunOptions(out_dir=args.out, show_progress=False, tensorboard=False, after_step=curve))
    exported = CompletionModel.load(str(result.model_dir))  # bf16 weights read back in float32, as shipped
    exported.model.to(device)
    final = curve.measure(exported.model)
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
        "final_acceptance_exported": final,
        "curve": curve.points,
        "parameters": json.loads((args.out / SUMMARY_NAME).read_text())["parameters"],
        "history": [h for h in history if h["step"] % 25 == 0 or h is history[-1]],
    }
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    last = history[-1]
    print(
        f"[{args.variant}] done: {result.state.step} steps, {result.state.tokens_seen:,} tokens in "
        f"{result.state.seconds:.0f} s; loss {last['main_loss']:.3f} / mtp {last['mtp_loss']:.3f}; "
        f"acceptance {final:.4f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
