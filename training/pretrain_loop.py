"""The pretraining step (`train_step`, also used by `mimo train repo` and `mimo bench train`) and the loop, its
state on one object: the model (sharded in place under FSDP2), what the step calls
(the model or DDP around it), the optimiser, the sampler, the run's position and the monitor.

One optimiser step: set the learning rate and the MTP loss weight λ from the run's progress in tokens, draw the
global batch for the current stage and train on this process's rows, advance the state. A step's losses are
read off the device one step late (see `run`). Checkpoints are written every `checkpoint_every` steps, at
`stop_at_step` and at the end: `checkpoint.pt` from rank 0 with replicated weights, a sharded `checkpoint/`
from every process under FSDP2 (training/checkpoint.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from training.checkpoint import TrainState, save_checkpoint, save_sharded
from training.config import PretrainConfig
from training.distributed import DistContext
from training.errors import ConfigError
from training.schedule import learning_rate, mtp_distill_weight, mtp_loss_weight
from training.train_monitor import Monitor

if TYPE_CHECKING:
    from training.data.mixture import MixtureSampler


@dataclass(frozen=True)
class RunOptions:
    out_dir: Path
    resume: bool = False
    stop_at_step: int | None = None  # checkpoint and stop after this step (time-boxed runs, resume tests)
    show_progress: bool = True
    tensorboard: bool = True
    # Called after each optimiser step (after any checkpoint of it) with the model and the run's state, whose
    # history then ends with that step: periodic evaluation, for example. It reads losses every step.
    after_step: Callable[[torch.nn.Module, "TrainState"], None] | None = None


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`, or None for plain float32."""
    if precision == "bfloat16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def train_step(
    model,
    optimizer,
    input_ids: torch.Tensor,
    grad_clip: float,
    autocast: torch.dtype | None = None,
    micro_batch: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on `input_ids` (labels are the inputs, shifted inside the model).

    Returns the (loss, main_loss, mtp_loss) tensor and the gradient norm before clipping. `logits_to_keep=1`
    skips the full-vocabulary logits the loss does not need a second time. With `autocast` the forward runs in
    that dtype while the weights and optimiser stay float32 (mixed precision). With `micro_batch` the rows go
    through forward and backward that many at a time, gradients accumulating (each loss scaled by its share),
    so activation memory is that of `micro_batch` rows whatever the batch.
    """
    pieces = input_ids.split(micro_batch) if micro_batch else (input_ids,)
    if len({piece.shape[0] for piece in pieces}) > 1:
        raise ValueError(f"{input_ids.shape[0]} rows do not split into micro-batches of {micro_batch}")
    total = torch.zeros(3, device=input_ids.device)
    for piece in pieces:
        precision = torch.autocast(piece.device.type, dtype=autocast) if autocast else contextlib.nullcontext()
        with precision:
            output = model(input_ids=piece, labels=piece, logits_to_keep=1)
        (output.loss / len(pieces)).backward()
        mtp = output.mtp_loss if output.mtp_loss is not None else torch.zeros((), device=output.loss.device)
        total += torch.stack([output.loss.detach(), output.main_loss.detach(), mtp.detach()]) / len(pieces)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total, grad_norm


@dataclass
class Trainer:
    config: PretrainConfig
    options: RunOptions
    context: DistContext
    model: torch.nn.Module
    trained: torch.nn.Module  # what a step calls: the model itself, or DDP around it
    optimizer: torch.optim.Optimizer
    sampler: MixtureSampler
    state: TrainState
    monitor: Monitor | None = None
    unread: dict | None = None  # the last step's record, its losses still on the device

    @property
    def sharded(self) -> bool:
        return self.config.strategy == "fsdp"

    def run(self) -> TrainState:
        """Steps until the run's tokens are trained or `stop_at_step`; returns the state."""
        rows = self.context.rows(self.config.batch_size)
        micro = self.config.micro_batch_size
        if micro and (rows.stop - rows.start) % micro:
            raise ConfigError(f"micro_batch_size {micro} does not divide the {rows.stop - rows.start} rows of each of "
                              f"the {self.context.world_size} processes (batch_size {self.config.batch_size})")  # fmt: skip
        self.monitor = self._monitor()
        autocast = autocast_dtype(self.config.precision, self.context.device)
        started = time.perf_counter() - self.state.seconds
        try:
            while self.state.tokens_seen < self.config.total_tokens:
                launched = self.step(autocast)
                # Reading a step's losses waits for the device; reading them one step late lets the next step's
                # kernels queue up behind it, so the GPU never idles while Python prepares a step.
                self.record()
                self.unread = launched
                self.state.seconds = time.perf_counter() - started
                stop_now = self.state.step == self.options.stop_at_step
                checkpoint_due = stop_now or self.state.step % self.config.checkpoint_every == 0
                checkpoint_due = checkpoint_due or self.state.tokens_seen >= self.config.total_tokens
                if checkpoint_due or self.options.after_step is not None:  # both need this step in the history
                    self.record()
                if checkpoint_due:
                    self.checkpoint()
                if self.options.after_step is not None:
                    self.options.after_step(self.model, self.state)
                if stop_now:
                    break
            self.record()
        finally:
            if self.monitor is not None:
                self.monitor.close()
        return self.state

    def step(self, autocast: torch.dtype | None) -> dict:
        """Trains on this process's rows of the next batch and advances the state; returns the step's record
        with its losses and gradient norm still as device tensors (see `record`)."""
        lr = self._set_schedules(self.state.tokens_seen / self.config.total_tokens)
        stage, batch = self.sampler.next_batch()
        rows = torch.from_numpy(batch[self.context.rows(self.config.batch_size)])
        if self.context.device.type == "cuda":  # a pinned copy goes to the GPU without waiting for queued work
            rows = rows.pin_memory()
        input_ids = rows.to(self.context.device, non_blocking=True)
        losses, grad_norm = train_step(self.trained, self.optimizer, input_ids, self.config.optim.grad_clip, autocast,
                                       self.config.micro_batch_size)  # fmt: skip
        self.state.step += 1
        self.state.tokens_seen += self.config.batch_size * stage.seq_len
        return {
            "step": self.state.step, "tokens": self.state.tokens_seen, "stage": stage.name, "seq_len": stage.seq_len,
            "lr": lr, "mtp_loss_weight": self.model.mtp_loss_weight,
            "mtp_distill_weight": self.model.mtp_distill_weight, "losses": self.context.mean(losses),
            "grad_norm": grad_norm,
        }  # fmt: skip

    def _set_schedules(self, progress: float) -> float:
        """The optimiser's learning rate and the model's loss weights for this point of the run (the model reads
        its weights as attributes: engine/model/modeling_mimo.py). Returns the learning rate."""
        lr = learning_rate(progress, self.config.optim)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        mtp = self.config.mtp
        self.model.mtp_loss_weight = mtp_loss_weight(progress, mtp)
        self.model.mtp_distill_weight = mtp_distill_weight(progress, mtp)
        self.model.mtp_distill_temperature = mtp.distill_temperature
        return lr

    def record(self) -> None:
        """Reads the unread step's losses off the device into the history (and the monitor), if there is one."""
        if self.unread is None:
            return
        record, self.unread = dict(self.unread), None
        record["loss"], record["main_loss"], record["mtp_loss"] = record.pop("losses").tolist()
        norm = record["grad_norm"]
        record["grad_norm"] = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # DTensor: FSDP2
        self.state.history.append(record)
        if self.monitor is not None:
            self.monitor.log(record, self.config.batch_size * record["seq_len"])

    def checkpoint(self) -> None:
        out_dir = self.options.out_dir
        if self.sharded:
            save_sharded(out_dir, self.model, self.optimizer, self.sampler, self.state, self.context)
            return
        if self.context.is_main:
            save_checkpoint(out_dir, self.model, self.optimizer, self.sampler, self.state)
        self.context.barrier()

    def _monitor(self) -> Monitor | None:
        if not self.context.is_main:
            return None
        log_dir = self.options.out_dir / "tensorboard" if self.options.tensorboard else None
        return Monitor(self.config.total_tokens, self.state.tokens_seen, log_dir,
                       show_progress=self.options.show_progress, log_every=self.config.log_every)  # fmt: skip
