"""Schedules as pure functions of the run's progress (tokens seen / total tokens).

Driving every schedule by tokens rather than steps keeps them right when stages change the sequence length,
and makes the schedule's state on resume nothing more than the token count the checkpoint already holds.
"""

from __future__ import annotations

import math

from training.config import MtpConfig, OptimConfig


def learning_rate(progress: float, optim: OptimConfig) -> float:
    """Linear warmup from 0, constant at `lr`, then a cosine decay to `min_lr` over the last `decay_fraction`."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < optim.warmup_fraction:
        return optim.lr * progress / optim.warmup_fraction
    decay_start = 1.0 - optim.decay_fraction
    if progress <= decay_start or optim.decay_fraction == 0:
        return optim.lr
    done = (progress - decay_start) / optim.decay_fraction
    return optim.min_lr + (optim.lr - optim.min_lr) * 0.5 * (1.0 + math.cos(math.pi * done))


def mtp_loss_weight(progress: float, mtp: MtpConfig) -> float:
    """MiMo's two-step λ: the early weight until `switch_fraction` of the tokens, the late one after."""
    return mtp.loss_weight if progress < mtp.switch_fraction else mtp.late_loss_weight


def mtp_distill_weight(progress: float, mtp: MtpConfig) -> float:
    """The draft head's self-distillation share α: 0 before `distill_from` of the tokens, `distill_weight` after."""
    return mtp.distill_weight if progress >= mtp.distill_from else 0.0
