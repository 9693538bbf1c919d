"""`mimo train calibrate`: per-test pass rates from reference models' rollouts, grouped into difficulty levels.

MiMo-7B's Test Difficulty Driven Reward needs to know how hard each test is: several models roll each problem out
N times, each test gets the share of rollouts that passed it, and the tests are grouped into levels (Easy, Medium,
Hard). Here the reference models are any ``engine.api.Engine`` (a checkpoint on our engine, or an OpenAI-compatible
server); the pass rates and levels are written into the tasks (``test_pass_rates``, ``test_levels``), where the
strict and soft rewards read them.

Levels come from an optimal one-dimensional clustering of a task's pass rates (the partition into at most
``levels`` groups of consecutive rates with the least within-group variance, found by dynamic programming:
Fisher's natural breaks). Written here because it is a dozen lines over a handful of numbers; tests with equal
rates always share a level, and level 0 holds the most-passed tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from training.rl.rewards import Reward, reward_from_result
from training.tasks.format import Task


def difficulty_levels(pass_rates: Sequence[float], levels: int = 3) -> tuple[int, ...]:
    """Each test's level: 0 for the group of highest pass rates, up to ``levels - 1`` for the lowest."""
    distinct = sorted(set(pass_rates), reverse=True)
    weights = [sum(1 for rate in pass_rates if rate == value) for value in distinct]
    groups = min(levels, len(distinct))
    breaks = _natural_breaks(distinct, weights, groups)
    level_of = {}
    for level, (start, end) in enumerate(zip([0, *breaks], [*breaks, len(distinct)])):
        for value in distinct[start:end]:
            level_of[value] = level
    return tuple(level_of[rate] for rate in pass_rates)


def _natural_breaks(values: list[float], weights: list[int], groups: int) -> list[int]:
    """Indices where groups 2..k start, minimising the weighted within-group sum of squares (exact DP)."""
    n = len(values)

    def cost(i: int, j: int) -> float:  # weighted SSE of values[i:j]
        total = sum(weights[i:j])
        mean = sum(w * v for w, v in zip(weights[i:j], values[i:j])) / total
        return sum(w * (v - mean) ** 2 for w, v in zip(weights[i:j], values[i:j]))

    best = {(j, 1): (cost(0, j), []) for j in range(1, n + 1)}
    for k in range(2, groups + 1):
        for j in range(k, n + 1):
            best[(j, k)] = min(
                ((best[(i, k - 1)][0] + cost(i, j), best[(i, k - 1)][1] + [i]) for i in range(k - 1, j)),
                key=lambda option: option[0],
            )
    return best[(n, groups)][1]


@dataclass(frozen=True)
class Calibration:
    task_id: str
    pass_rates: tuple[float, ...]
    levels: tuple[int, ...]
    rollouts: int
    solved_share: float  # rollouts that passed every test

    def apply(self, task: Task, models: list[str]) -> Task:
        meta = dict(task.meta, calibration={"models": models, "rollouts": self.rollouts,
                                            "solved_share": round(self.solved_share, 4)})  # fmt: skip
        return task.model_copy(
            update={
                "test_pass_rates": tuple(round(r, 4) for r in self.pass_rates),
                "test_levels": self.levels,
                "meta": meta,
            }  # fmt: skip
        )


def calibrate_task(task: Task, rewards: list[Reward], levels: int = 3) -> Calibration:
    """Pass rates and levels of ``task``'s tests from its rollouts' rewards (a run that did not complete passed
    nothing)."""
    if not rewards:
        raise ValueError(f"no rollouts for task {task.id}")
    rates = tuple(sum(r.passed[i] for r in rewards) / len(rewards) for i in range(len(task.tests)))
    return Calibration(task.id, rates, difficulty_levels(rates, levels), len(rewards),
                       sum(r.solved for r in rewards) / len(rewards))  # fmt: skip


def rollout_rewards(
    tasks: list[Task],
    completions: dict[str, list[str]],
    pool,
    on_result: Callable[[object], None] = lambda result: None,
) -> dict[str, list[Reward]]:
    """Every completion verified; the rewards (binary: only ``passed`` per test is used here) per task."""
    by_id = {task.id: task for task in tasks}
    order = [(task_id, text) for task_id, texts in completions.items() for text in texts]
    jobs = (by_id[task_id].job(by_id[task_id].program(text)) for task_id, text in order)
    rewards: dict[str, list[Reward]] = {task.id: [] for task in tasks}
    for (task_id, _), result in zip(order, pool.map(jobs)):
        on_result(result)
        rewards[task_id].append(reward_from_result(result, by_id[task_id], "binary"))
    return rewards
