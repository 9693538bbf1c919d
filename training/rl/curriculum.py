"""Which problems a step trains on: Easy Data Re-Sampling and dynamic sampling (MiMo-7B §3.3), as plain objects.

Easy Data Re-Sampling: a problem solved by every rollout of its group leaves the main pool for an easy pool; each
draw takes from the easy pool with probability ``alpha`` (0.1), else from the main pool (shuffled, epoch after
epoch). An easy problem that stops being solved by every rollout goes back to the main pool. ``mode = "delete"``
is the ablation MiMo reports as destabilising (solved problems are dropped for good); ``"off"`` keeps every
problem in the main pool.

Dynamic sampling: a group whose rewards are all equal (every rollout failed, or every one earned the same score)
has zero advantage everywhere, so it would only dilute the token-level loss. The rollout draws further problems
until the step's batch holds enough groups that differ (``informative``), up to a budget; places still empty then
are masked out of the loss (see ``rollout_func``).

State (pools, RNG, position) round-trips through ``state_dict`` so a resumed run draws what an uninterrupted one
would have.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

EasyMode = Literal["resample", "delete", "off"]


def informative(scores: Sequence[float], tolerance: float = 1e-9) -> bool:
    """True when a group's rewards differ, so its group-normalised advantages are not all zero."""
    return bool(scores) and max(scores) - min(scores) > tolerance


class Curriculum:
    def __init__(self, task_ids: Sequence[str], seed: int = 0, mode: EasyMode = "resample", alpha: float = 0.1):
        if not task_ids:
            raise ValueError("a curriculum needs at least one task")
        self.mode = mode
        self.alpha = alpha if mode == "resample" else 0.0
        self.rng = random.Random(seed)
        self.main: list[str] = list(dict.fromkeys(task_ids))
        self.easy: list[str] = []
        self.deleted: list[str] = []
        self.order: list[str] = []  # this epoch's remaining main-pool draws
        self.epoch = 0
        self.draws = {"main": 0, "easy": 0}

    def draw(self) -> str:
        """The next problem: from the easy pool with probability alpha (when it has any), else the main pool."""
        if self.easy and self.rng.random() < self.alpha:
            self.draws["easy"] += 1
            return self.rng.choice(self.easy)
        self.draws["main"] += 1
        return self._next_main()

    def _next_main(self) -> str:
        while not self.order:
            if not self.main:  # everything solved (or deleted): keep training on what is left
                return self.rng.choice(self.easy or self.deleted)
            self.order = list(self.main)
            self.rng.shuffle(self.order)
            self.epoch += 1
        task_id = self.order.pop()
        return task_id if task_id in self._main_set() else self._next_main()

    def _main_set(self) -> set[str]:
        return set(self.main)

    def record(self, task_id: str, solved: Sequence[bool]) -> None:
        """After a group of rollouts of ``task_id``: ``solved[i]`` is whether rollout i passed every test."""
        if self.mode == "off" or not solved:
            return
        if all(solved) and task_id in self.main:
            self.main.remove(task_id)
            (self.easy if self.mode == "resample" else self.deleted).append(task_id)
        elif not all(solved) and task_id in self.easy:
            self.easy.remove(task_id)
            self.main.append(task_id)

    @property
    def sizes(self) -> dict[str, int]:
        return {"main": len(self.main), "easy": len(self.easy), "deleted": len(self.deleted)}

    def state_dict(self) -> dict:
        return {
            "mode": self.mode,
            "alpha": self.alpha,
            "main": list(self.main),
            "easy": list(self.easy),
            "deleted": list(self.deleted),
            "order": list(self.order),
            "epoch": self.epoch,
            "draws": dict(self.draws),
            "rng": _rng_to_json(self.rng.getstate()),
        }

    def load_state_dict(self, state: dict) -> None:
        for key in ("main", "easy", "deleted", "order"):
            setattr(self, key, list(state[key]))
        self.epoch, self.draws = state["epoch"], dict(state["draws"])
        self.rng.setstate(_rng_from_json(state["rng"]))


def _rng_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(state: list) -> tuple:
    version, internal, gauss = state
    return version, tuple(internal), gauss
