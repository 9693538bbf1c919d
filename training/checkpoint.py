"""Resumable training checkpoints: everything a resumed run needs to continue bit for bit.

Replicated weights (one process or DDP): one file, `checkpoint.pt`, replaced atomically (written beside, then
renamed), so a kill during a save leaves the previous checkpoint intact.

Sharded weights (FSDP2): a `checkpoint/` folder written by `torch.distributed.checkpoint`, every process saving
its own shards, plus `trainer.pt` (sampler, step, history, RNG) from rank 0. DCP records each tensor's global
shape, so a run resumes on another number of processes (or one). The folder is written as
`checkpoint.partial/` and renamed into place once every process has finished; a kill between the two renames
leaves `checkpoint.old/`, which is read instead.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from training.errors import UserError

CHECKPOINT_NAME = "checkpoint.pt"
SHARDED_NAME = "checkpoint"
TRAINER_FILE = "trainer.pt"


@dataclass
class TrainState:
    """Where the run is; `history` holds one record per optimiser step (step, tokens, lr, losses)."""

    step: int = 0
    tokens_seen: int = 0
    seconds: float = 0.0  # wall time spent training, summed over resumed segments
    history: list[dict] = field(default_factory=list)


def _trainer_payload(sampler, state: TrainState) -> dict:
    return {
        "sampler": sampler.state_dict(),
        "state": {"step": state.step, "tokens_seen": state.tokens_seen, "seconds": state.seconds,
                  "history": state.history},
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
    }  # fmt: skip


def _restore_trainer(payload: dict, sampler) -> TrainState:
    sampler.load_state_dict(payload["sampler"])
    torch.set_rng_state(payload["rng"]["torch"])
    np.random.set_state(payload["rng"]["numpy"])
    random.setstate(payload["rng"]["python"])
    return TrainState(**payload["state"])


def save_checkpoint(out_dir: Path, model, optimizer, sampler, state: TrainState) -> Path:
    payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), **_trainer_payload(sampler, state)}
    path = Path(out_dir) / CHECKPOINT_NAME
    partial = path.with_suffix(".partial")
    torch.save(payload, partial)
    os.replace(partial, path)
    return path


def load_checkpoint(out_dir: Path, model, optimizer, sampler) -> TrainState:
    """Restores model, optimiser, sampler and RNG states in place; returns the run's position."""
    path = Path(out_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise UserError(
            f"--resume: no {CHECKPOINT_NAME} in {out_dir}; start without --resume or point --out at the run"
        )
    payload = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    return _restore_trainer(payload, sampler)


def save_sharded(out_dir: Path, model, optimizer, sampler, state: TrainState, context) -> Path:
    """Every process calls this (the save is collective); returns the checkpoint folder."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    final = Path(out_dir) / SHARDED_NAME
    partial, old = final.with_name(f"{SHARDED_NAME}.partial"), final.with_name(f"{SHARDED_NAME}.old")
    if context.is_main and partial.exists():
        shutil.rmtree(partial)
    context.barrier()
    model_state, optimizer_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=str(partial), no_dist=_alone())
    if context.is_main:
        torch.save(_trainer_payload(sampler, state), partial / TRAINER_FILE)
        if final.exists():
            os.replace(final, old)
        os.replace(partial, final)
        shutil.rmtree(old, ignore_errors=True)
    context.barrier()
    return final


def _alone() -> bool:
    """One process without a process group: DCP reads and writes every shard itself."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized())


def sharded_folder(out_dir: Path) -> Path | None:
    """The sharded checkpoint to read: `checkpoint/`, else the `checkpoint.old/` a kill left mid-rename."""
    for name in (SHARDED_NAME, f"{SHARDED_NAME}.old"):
        if (Path(out_dir) / name / TRAINER_FILE).is_file():
            return Path(out_dir) / name
    return None


def load_sharded(out_dir: Path, model, optimizer, sampler) -> TrainState:
    """Every process calls this; the model may be sharded over any number of processes, or not at all."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    folder = sharded_folder(out_dir)
    if folder is None:
        raise UserError(f"--resume: no {SHARDED_NAME}/ in {out_dir}; start without --resume or point --out at the run")
    model_state, optimizer_state = get_state_dict(model, optimizer)
    loaded = {"model": model_state, "optimizer": optimizer_state}
    dcp.load(loaded, checkpoint_id=str(folder), no_dist=_alone())
    set_state_dict(model, optimizer, model_state_dict=loaded["model"], optim_state_dict=loaded["optimizer"])
    return _restore_trainer(torch.load(folder / TRAINER_FILE, map_location="cpu", weights_only=False), sampler)


def load_model_weights(run_dir: Path, model) -> None:
    """The model weights of a run's last checkpoint, either format, into an unsharded `model` (one process)."""
    path = Path(run_dir) / CHECKPOINT_NAME
    if path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["model"])
        return
    if (folder := sharded_folder(run_dir)) is None:
        raise UserError(
            f"no {CHECKPOINT_NAME} or {SHARDED_NAME}/ in {run_dir}; train first with `mimo train pretrain --out {run_dir}`"
        )
    import torch.distributed.checkpoint as dcp

    state = {"model": model.state_dict()}
    dcp.load(state, checkpoint_id=str(folder), no_dist=_alone())
    model.load_state_dict(state["model"])
