"""Calibration: per-test pass rates from rollouts and their difficulty levels."""

from __future__ import annotations

import itertools
import random

import pytest

from training.rl.calibrate import calibrate_task, difficulty_levels
from training.rl.rewards import Reward
from training.tasks.format import Task


@pytest.mark.parametrize(
    ("rates", "levels", "expected"),
    [
        ((0.9, 0.85, 0.5, 0.1, 0.05), 3, (0, 0, 1, 2, 2)),
        ((1.0, 1.0, 1.0), 3, (0, 0, 0)),  # one distinct rate: one level
        ((0.2, 0.9), 3, (1, 0)),  # the most-passed test is level 0, wherever it is
        ((0.9, 0.9, 0.1, 0.5, 0.5, 0.45), 2, (0, 0, 1, 1, 1, 1)),
        ((0.0, 0.0, 1.0, 0.5), 3, (2, 2, 0, 1)),
    ],
)
def test_levels_on_hand_made_pass_rates(rates, levels, expected):
    assert difficulty_levels(rates, levels) == expected


def _sse(groups):
    return sum(sum((v - sum(g) / len(g)) ** 2 for v in g) for g in groups)


def test_levels_are_the_best_split_into_consecutive_groups():
    rng = random.Random(0)
    for _ in range(40):
        rates = [round(rng.random(), 2) for _ in range(rng.randint(2, 7))]
        levels = difficulty_levels(rates, 3)
        distinct = sorted(set(rates), reverse=True)
        groups = [[r for r, lv in zip(rates, levels) if lv == level] for level in sorted(set(levels))]
        best = min(
            _sse([[r for r in rates if r in distinct[a:b]] for a, b in zip((0, *cut), (*cut, len(distinct)))])
            for k in range(min(3, len(distinct)))
            for cut in itertools.combinations(range(1, len(distinct)), k)
        )
        assert _sse(groups) == pytest.approx(best)
        # Equal rates share a level, and a higher rate never sits at a harder level.
        assert all(la <= lb for (ra, la), (rb, lb) in itertools.product(zip(rates, levels), repeat=2) if ra > rb)


def test_a_task_is_calibrated_from_its_rollouts():
    task = Task(id="t", format="functional", prompt="def f(x):", tests=("assert f(1)", "assert f(2)", "assert f(3)"))
    rewards = [
        Reward(1.0, (True, True, True), (0, 0, 0), True),
        Reward(0.0, (True, True, False), (0, 0, 0), False),
        Reward(0.0, (True, False, False), (0, 0, 0), False),
        Reward(0.0, (False, False, False), (0, 0, 0), False),
    ]
    calibration = calibrate_task(task, rewards, levels=3)
    assert calibration.pass_rates == (0.75, 0.5, 0.25)
    assert calibration.levels == (0, 1, 2) and calibration.solved_share == 0.25
    calibrated = calibration.apply(task, ["nano"])
    assert calibrated.test_levels == (0, 1, 2) and calibrated.test_pass_rates == (0.75, 0.5, 0.25)
    assert calibrated.meta["calibration"] == {"models": ["nano"], "rollouts": 4, "solved_share": 0.25}
