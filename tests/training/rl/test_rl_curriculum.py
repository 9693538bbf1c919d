"""Easy Data Re-Sampling and dynamic sampling's group test, on small fixtures where the effect is countable."""

from __future__ import annotations

import math

import pytest

from training.rl.curriculum import Curriculum, informative

IDS = [f"t{i}" for i in range(20)]


def test_a_group_is_informative_only_when_its_rewards_differ():
    assert not informative([0.0, 0.0, 0.0, 0.0])
    assert not informative([1.0, 1.0])
    assert not informative([0.5, 0.5, 0.5])  # the same partial score everywhere: zero advantage too
    assert informative([0.0, 0.0, 1.0, 0.0])
    assert informative([0.25, 0.5])
    assert not informative([])


def test_a_problem_solved_by_every_rollout_moves_to_the_easy_pool_and_back_when_it_fails():
    curriculum = Curriculum(IDS, seed=0, mode="resample", alpha=0.1)
    curriculum.record("t3", [True, True, True, True])
    assert "t3" in curriculum.easy and "t3" not in curriculum.main
    curriculum.record("t4", [True, False, True, True])  # not solved by all: stays
    assert "t4" in curriculum.main
    curriculum.record("t3", [True, True, False, True])  # an easy problem failed again: back to the main pool
    assert "t3" in curriculum.main and curriculum.easy == []


@pytest.mark.parametrize("alpha", [0.1, 0.3])
def test_the_easy_pool_is_drawn_at_rate_alpha(alpha):
    curriculum = Curriculum(IDS, seed=1, mode="resample", alpha=alpha)
    easy = {"t0", "t1", "t2", "t3", "t4"}
    for task_id in easy:
        curriculum.record(task_id, [True] * 4)
    draws = [curriculum.draw() for _ in range(4000)]
    rate = sum(d in easy for d in draws) / len(draws)
    spread = 4 * math.sqrt(alpha * (1 - alpha) / len(draws))  # four standard deviations of a binomial share
    assert abs(rate - alpha) < spread
    assert set(draws) - easy == set(IDS) - easy  # the main pool keeps being drawn, every problem of it


def test_the_main_pool_is_drawn_epoch_by_epoch():
    curriculum = Curriculum(IDS, seed=2, mode="off")
    first, second = [curriculum.draw() for _ in IDS], [curriculum.draw() for _ in IDS]
    assert sorted(first) == sorted(IDS) and sorted(second) == sorted(IDS) and first != second


def test_delete_mode_drops_solved_problems_for_good_and_off_mode_keeps_them():
    deleting = Curriculum(IDS, seed=0, mode="delete", alpha=0.1)
    deleting.record("t5", [True] * 4)
    assert "t5" in deleting.deleted and "t5" not in deleting.main and deleting.easy == []
    assert "t5" not in {deleting.draw() for _ in range(500)}
    keeping = Curriculum(IDS, seed=0, mode="off")
    keeping.record("t5", [True] * 4)
    assert keeping.sizes == {"main": 20, "easy": 0, "deleted": 0}


def test_a_restored_curriculum_draws_what_the_original_would_have():
    original = Curriculum(IDS, seed=3, mode="resample", alpha=0.5)
    for task_id in ("t1", "t2"):
        original.record(task_id, [True] * 2)
    [original.draw() for _ in range(7)]
    import json

    restored = Curriculum(IDS, seed=99, mode="resample", alpha=0.5)
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    assert [restored.draw() for _ in range(50)] == [original.draw() for _ in range(50)]
    assert restored.sizes == original.sizes


def test_when_everything_is_solved_the_easy_pool_still_supplies_problems():
    curriculum = Curriculum(["a", "b"], seed=0, mode="resample", alpha=0.1)
    curriculum.record("a", [True])
    curriculum.record("b", [True])
    assert {curriculum.draw() for _ in range(20)} <= {"a", "b"}
