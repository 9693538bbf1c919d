"""Dynamic sampling inside the rollout function: draw budget, over-sampling, filler groups, logged figures."""

from __future__ import annotations

import pytest

from training.rl.curriculum import Curriculum
from training.rl.rewards import Reward
from training.rl.rollout import Completion, RolloutStats
from training.rl.rollout_func import CodeRollouts, GroupSampling
from training.tasks.format import Task

TASKS = {f"t{i}": Task(id=f"t{i}", format="functional", prompt=f"def f{i}(x):", tests=("assert True",))
         for i in range(12)}  # fmt: skip


class Generator:
    """Completions whose text is the sample's index, so the scorer below decides each group's rewards."""

    def __init__(self):
        self.rounds = []

    def generate(self, trainer, prompts, n, seed):
        self.rounds.append(len(prompts))
        groups = [[Completion((100 + i, 0), True) for i in range(n)] for _ in prompts]
        return groups, RolloutStats(len(prompts) * n, 2 * len(prompts) * n, 0.1, 10, 5)


class Scorer:
    """Tasks t0..t5 are flat (every rollout fails); the others alternate pass and fail."""

    def score(self, task, texts):
        flat = int(task.id[1:]) < 6
        return [Reward(0.0 if flat else float(i % 2), (False,), (0,), not flat and i % 2 == 1) for i, _ in
                enumerate(texts)]  # fmt: skip


class Tokenizer:
    def __call__(self, text):
        return {"input_ids": [ord(c) % 50 for c in text]}

    def batch_decode(self, ids, skip_special_tokens=True):
        return [str(row) for row in ids]


def _rollouts(ids, dynamic=True, factor=3.0):
    curriculum = Curriculum(ids, seed=0, mode="off")
    settings = GroupSampling(num_generations=4, dynamic_sampling=dynamic, max_draw_factor=factor)
    return CodeRollouts(TASKS, curriculum, Generator(), Scorer(), Tokenizer(), settings)


def test_flat_groups_are_replaced_by_drawing_more():
    rollouts = _rollouts(list(TASKS))
    output = rollouts(["p"] * 16, None)  # 4 groups of 4
    assert len(output["task_id"]) == 16 and all(set(mask) == {1} for mask in output["env_mask"])
    assert all(int(t[1:]) >= 6 for t in output["task_id"])  # only informative groups
    metrics = rollouts.ledger.take_metrics()
    assert metrics["dynamic/unfilled_share"] == 0.0 and metrics["dynamic/groups_drawn"] > 4
    assert 0 < metrics["dynamic/dropped_share"] < 1 and metrics["rollout/mtp_acceptance"] == 0.5
    assert rollouts.ledger.take_metrics() == {}  # taken once


def test_when_the_budget_runs_out_the_empty_places_are_masked():
    rollouts = _rollouts([f"t{i}" for i in range(6)], factor=2.0)  # only flat tasks
    output = rollouts(["p"] * 8, None)
    assert len(output["task_id"]) == 8 and all(set(mask) == {0} for mask in output["env_mask"])
    assert sum(rollouts.generator.rounds) == 4  # 2 groups needed x factor 2
    assert rollouts.ledger.metrics["dynamic/unfilled_share"] == 1.0


def test_without_dynamic_sampling_one_round_is_trained_as_drawn():
    rollouts = _rollouts(list(TASKS), dynamic=False)
    output = rollouts(["p"] * 16, None)
    assert rollouts.generator.rounds == [4] and all(set(mask) == {1} for mask in output["env_mask"])
    assert output["logprobs"] is None and len(output["prompt_ids"]) == 16


def test_the_slice_must_hold_whole_groups():
    with pytest.raises(ValueError, match="whole groups of 4"):
        _rollouts(list(TASKS))(["p"] * 6, None)


def test_scores_wait_in_the_ledger_for_the_reward_function():
    rollouts = _rollouts(list(TASKS), dynamic=False)
    output = rollouts(["p"] * 8, None)
    texts = [str(list(ids)) for ids in output["completion_ids"]]
    assert all((t, text) in rollouts.ledger.scores for t, text in zip(output["task_id"], texts))
