"""The fine-tuning loop: stops on validation loss, fits a time budget, resumes after a kill.

- **Plan.** The run's length in tokens is fixed once, after timing its first steps: as many passes as
  `max_epochs` allows and the time budget fits (validation passes included). The learning rate warms up over
  `warmup_fraction` of the plan, then follows a cosine to `min_lr_ratio` x lr at its end.
- **Early stopping.** `evals_per_epoch` times a pass the validation files' loss is measured (teacher-forced,
  the same windows as `mimo eval completion`'s `loss`). The best state so far is kept; after `patience`
  evaluations without a new best the run stops, and the best state is what gets exported. The base model's
  own loss is the first "best", so a run that only hurts returns the base unchanged.
- **Resume.** Every evaluation writes `checkpoint.pt` (trained tensors, optimiser, sampler position, plan,
  best state, history) atomically; `--resume` continues from it with the same batches.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from training.errors import UserError
from training.repo import tuning

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class TrainOptions:
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_fraction: float = 0.05
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    batch_size: int = 8
    seq_len: int = 512
    max_epochs: float = 6.0
    evals_per_epoch: int = 4
    patience: int = 2
    mtp_loss_weight: float = 1.0  # λ, with the draft head self-distilled as in nano's phase 2
    distill_weight: float = 1.0
    distill_temperature: float = 0.5
    validation_tokens: int = 16_384
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.lr > 0 and 0 <= self.min_lr_ratio <= 1 and 0 <= self.warmup_fraction < 1):
            raise UserError("--lr must be positive (min-lr ratio in [0, 1], warmup fraction in [0, 1))")
        for name in ("batch_size", "seq_len", "evals_per_epoch", "patience", "validation_tokens"):
            if getattr(self, name) < 1:
                raise UserError(f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}")
        if not self.max_epochs > 0:
            raise UserError(f"--max-epochs must be positive, got {self.max_epochs}")


@dataclass
class LoopState:
    step: int = 0
    tokens: int = 0
    seconds: float = 0.0
    plan_tokens: int = 0  # 0 until the first steps are timed
    best_loss: float = math.inf
    best_step: int = 0
    bad_evals: int = 0
    stopped: str = ""  # why the loop ended: early-stop, plan-done, time-budget
    evals: list[dict] = field(default_factory=list)  # {"step", "tokens", "epoch", "loss", "acceptance"}
    train_losses: list[float] = field(default_factory=list)


@dataclass
class Loop:
    """Everything the loop works on; `deadline` is a time.monotonic() value (None: no budget)."""

    model: torch.nn.Module
    tokenizer: object
    sampler: object
    train_tokens: int  # tokens in one pass over the training files
    validation_texts: list[str]
    options: TrainOptions
    out: Path
    deadline: float | None = None
    progress: object = None  # a Progress from progress.py, or None


def learning_rate(progress: float, options: TrainOptions) -> float:
    progress = min(max(progress, 0.0), 1.0)
    if progress < options.warmup_fraction:
        return options.lr * (progress + 1e-3) / options.warmup_fraction
    done = (progress - options.warmup_fraction) / (1 - options.warmup_fraction)
    floor = options.lr * options.min_lr_ratio
    return floor + (options.lr - floor) * 0.5 * (1 + math.cos(math.pi * done))


def validation_stats(loop: Loop) -> tuple[float, float | None]:
    """(loss, MTP acceptance) on the validation files, teacher-forced."""
    from training.completion_model import CompletionModel
    from training.evaluate import EvalOptions

    lm = CompletionModel(model=tuning.causal_lm(loop.model), tokenizer=loop.tokenizer)
    was_training = loop.model.training
    loop.model.eval()
    try:
        stats = lm.heldout_stats(loop.validation_texts, EvalOptions(acceptance_tokens=loop.options.validation_tokens))
    finally:
        loop.model.train(was_training)
    if stats.loss is None:
        raise UserError("the validation files hold too few tokens to measure a loss; add files or raise --held-out")
    return stats.loss, stats.acceptance


def train(loop: Loop, resume: bool) -> tuple[LoopState, dict[str, torch.Tensor]]:
    """Runs the loop to its end; returns the final state and the best trained tensors (to load and export)."""
    optimizer = build_optimizer(loop.model, loop.options)
    causal = tuning.causal_lm(loop.model)
    causal.mtp_loss_weight = loop.options.mtp_loss_weight
    causal.mtp_distill_weight = loop.options.distill_weight
    causal.mtp_distill_temperature = loop.options.distill_temperature
    if resume:
        state, best = load_checkpoint(loop, optimizer)
    else:
        state, best = LoopState(), tuning.trainable_state(loop.model)
        _evaluate(loop, state, best, first=True)
    loop.model.train()
    _run(loop, optimizer, state, best)
    return state, best


def build_optimizer(model: torch.nn.Module, options: TrainOptions) -> torch.optim.AdamW:
    """MiMo's AdamW (β 0.9/0.95, decay on matrices only, fused) with a learning-rate scale per group:
    the trainer sets each group's lr to the schedule's value times its `lr_scale`."""
    groups: dict[tuple[bool, float], list] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            key = (parameter.ndim >= 2, tuning.learning_rate_scale(name, model))
            groups.setdefault(key, []).append(parameter)
    return torch.optim.AdamW(
        [{"params": params, "weight_decay": options.weight_decay if decayed else 0.0, "lr_scale": scale}
         for (decayed, scale), params in sorted(groups.items())],
        lr=options.lr, betas=(0.9, 0.95), fused=True,
    )  # fmt: skip


def _run(loop: Loop, optimizer, state: LoopState, best: dict) -> None:
    from training.pretrain import train_step

    options = loop.options
    step_tokens = options.batch_size * options.seq_len
    eval_every = max(1, round(loop.train_tokens / options.evals_per_epoch / step_tokens))
    started, step_times = time.perf_counter() - state.seconds, []
    while not state.stopped:
        if _out_of_time(loop, step_times):
            state.stopped = "time-budget"
            break
        tick = time.perf_counter()
        progress = state.tokens / state.plan_tokens if state.plan_tokens else 0.0
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(progress, options) * group["lr_scale"]
        _, batch = loop.sampler.next_batch()
        losses, _ = train_step(loop.model, optimizer, torch.from_numpy(batch), options.grad_clip)
        state.step += 1
        state.tokens += step_tokens
        state.train_losses.append(round(float(losses[1]), 4))
        step_times.append(time.perf_counter() - tick)
        state.seconds = time.perf_counter() - started
        if not state.plan_tokens and state.step >= 2:
            state.plan_tokens = _plan(loop, state, step_times, eval_every)
        if loop.progress is not None:
            loop.progress.step(state, step_tokens, float(losses[1]))
        if state.plan_tokens and state.tokens >= state.plan_tokens:
            state.stopped = "plan-done"
        if state.step % eval_every == 0 or state.stopped:
            _evaluate(loop, state, best)
            save_checkpoint(loop, optimizer, state, best)


def _plan(loop: Loop, state: LoopState, step_times: list[float], eval_every: int) -> int:
    """Tokens for the whole run: `max_epochs` passes, or fewer if that would not fit the time budget."""
    step_tokens = loop.options.batch_size * loop.options.seq_len
    wanted = int(loop.options.max_epochs * loop.train_tokens)
    if loop.deadline is None:
        return max(wanted, state.tokens)
    seconds_per_step = min(step_times[-2:])
    eval_seconds = state.evals[-1]["seconds"] if state.evals else 0.0
    remaining = (loop.deadline - time.monotonic()) * 0.92  # slack for checkpoints and timing noise
    steps = int(remaining / (seconds_per_step + eval_seconds / eval_every))
    return max(state.tokens + step_tokens, min(wanted, state.tokens + steps * step_tokens))


def _out_of_time(loop: Loop, step_times: list[float]) -> bool:
    if loop.deadline is None:
        return False
    need = (max(step_times[-3:]) if step_times else 0.0) * 1.2
    return time.monotonic() + need >= loop.deadline


def _evaluate(loop: Loop, state: LoopState, best: dict, first: bool = False) -> None:
    tick = time.perf_counter()
    loss, acceptance = validation_stats(loop)
    record = {
        "step": state.step, "tokens": state.tokens, "epoch": round(state.tokens / max(1, loop.train_tokens), 3),
        "loss": round(loss, 5), "acceptance": None if acceptance is None else round(acceptance, 5),
        "seconds": round(time.perf_counter() - tick, 2),
    }  # fmt: skip
    state.evals.append(record)
    if loss < state.best_loss - 1e-4:
        state.best_loss, state.best_step, state.bad_evals = loss, state.step, 0
        if not first:
            best.clear()
            best.update(tuning.trainable_state(loop.model))
    else:
        state.bad_evals += 1
        if state.bad_evals >= loop.options.patience and not state.stopped:
            state.stopped = "early-stop"
    if loop.progress is not None:
        loop.progress.evaluated(record, state)


def save_checkpoint(loop: Loop, optimizer, state: LoopState, best: dict) -> None:
    payload = {
        "trained": tuning.trainable_state(loop.model),
        "best": best,
        "optimizer": optimizer.state_dict(),
        "sampler": loop.sampler.state_dict(),
        "state": asdict(state),
        "options": asdict(loop.options),
    }
    path = loop.out / CHECKPOINT
    partial = path.with_suffix(".partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def load_checkpoint(loop: Loop, optimizer) -> tuple[LoopState, dict]:
    path = loop.out / CHECKPOINT
    if not path.is_file():
        raise UserError(f"--resume: no {CHECKPOINT} in {loop.out}; start without --resume")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if payload["options"] != asdict(loop.options):
        changed = sorted(k for k, v in asdict(loop.options).items() if payload["options"].get(k) != v)
        raise UserError(f"--resume: the run was started with other settings ({', '.join(changed)}); use the same")
    expected = tuning.trainable_state(loop.model).keys()
    if payload["trained"].keys() != expected:
        raise UserError("--resume: the checkpoint trained other weights (--lora/--full or --mtp differ); use the same")
    tuning.load_trainable(loop.model, payload["trained"])
    optimizer.load_state_dict(payload["optimizer"])
    loop.sampler.load_state_dict(payload["sampler"])
    state = LoopState(**payload["state"])
    if state.stopped == "time-budget":
        state.stopped = ""  # a budget ended the last invocation; this one has its own
    return state, payload["best"]
