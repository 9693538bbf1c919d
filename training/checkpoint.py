"""Resumable training checkpoints: everything a resumed run needs to continue bit for bit.

One file, `checkpoint.pt`, replaced atomically (written beside, then renamed), so a kill during a save leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from training.errors import UserError

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainState:
    """Where the run is; `history` holds one record per optimiser step (step, tokens, lr, losses)."""

    step: int = 0
    tokens_seen: int = 0
    seconds: float = 0.0  # wall time spent training, summed over resumed segments
    history: list[dict] = field(default_factory=list)


def save_checkpoint(out_dir: Path, model, optimizer, sampler, state: TrainState) -> Path:
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "sampler": sampler.state_dict(),
        "state": {
            "step": state.step,
            "tokens_seen": state.tokens_seen,
            "seconds": state.seconds,
            "history": state.history,
        },
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
    }
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
    sampler.load_state_dict(payload["sampler"])
    torch.set_rng_state(payload["rng"]["torch"])
    np.random.set_state(payload["rng"]["numpy"])
    random.setstate(payload["rng"]["python"])
    return TrainState(**payload["state"])
