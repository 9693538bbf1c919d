"""Rewards: binary, strict and soft Test Difficulty Driven Reward on hand-made test tables, and no reward for a
run the verifier could not vouch for."""

from __future__ import annotations

import pytest

from training.rl.rewards import binary_score, code_reward, reward_from_result, soft_score, strict_score
from training.tasks.format import Task
from training.verify import Outcome, TestResult, VerifyResult

# Six tests in three levels: 0 (easy) x2, 1 (medium) x3, 2 (hard) x1.
LEVELS = (0, 0, 1, 1, 1, 2)
T, F = True, False


@pytest.mark.parametrize(
    ("passed", "strict", "soft"),
    [
        ((T, T, T, T, T, T), 1.0, 1.0),  # everything
        ((F, F, F, F, F, F), 0.0, 0.0),  # nothing
        ((T, T, F, F, F, F), 1 / 3, 1 / 3),  # the easy level only
        ((T, T, T, T, T, F), 2 / 3, 2 / 3),  # all but the hard test
        ((T, F, T, T, T, T), 0.0, 1 / 6 + 1 / 3 + 1 / 3),  # an easy test failed: strict gives nothing above it
        ((T, T, T, F, T, T), 1 / 3, 1 / 3 + 2 / 9 + 1 / 3),  # a medium test failed: strict stops at level 0
        ((F, F, F, F, F, T), 0.0, 1 / 3),  # only the hard test: soft credits it, strict does not
        ((T, F, F, F, F, F), 0.0, 1 / 6),  # half the easy level
    ],
)
def test_strict_and_soft_on_a_hand_made_table(passed, strict, soft):
    assert strict_score(passed, LEVELS) == pytest.approx(strict)
    assert soft_score(passed, LEVELS) == pytest.approx(soft)
    assert binary_score(passed) == (1.0 if all(passed) else 0.0)


def test_without_levels_strict_is_binary_and_soft_is_the_fraction_passed():
    levels = (0, 0, 0, 0)
    assert strict_score((T, T, T, F), levels) == 0.0
    assert soft_score((T, T, T, F), levels) == pytest.approx(0.75)
    assert strict_score((T, T, T, T), levels) == 1.0


def test_level_numbers_need_not_be_contiguous():
    assert strict_score((T, T, F), (0, 4, 9)) == pytest.approx(2 / 3)
    assert soft_score((T, F, T), (3, 3, 7)) == pytest.approx(1 / 4 + 1 / 2)


TASK = Task(
    id="inc",
    format="functional",
    prompt="def inc(x):",
    tests=("assert inc(1) == 2", "assert inc(-1) == 0", "assert inc(10**6) == 10**6 + 1"),
    test_levels=(0, 0, 1),
)


def _result(outcomes, completed=True) -> VerifyResult:
    tests = tuple(TestResult(i, Outcome(o)) for i, o in enumerate(outcomes))
    return VerifyResult(tests=tests, completed=completed, exit_code=0, timed_out=False, wall_s=0.1, sandboxed=True)


def test_reward_from_a_result_uses_the_tasks_levels():
    reward = reward_from_result(_result(["passed", "passed", "failed"]), TASK, "strict")
    assert reward.score == pytest.approx(0.5) and not reward.solved
    assert reward.passed == (True, True, False) and reward.levels == (0, 0, 1)
    assert reward_from_result(_result(["passed"] * 3), TASK, "soft").solved


def test_no_reward_for_a_run_that_did_not_complete_or_does_not_match_the_task():
    # Records that claim passes, from a run the verifier did not see finish, earn nothing.
    incomplete = reward_from_result(_result(["passed"] * 3, completed=False), TASK, "soft")
    assert incomplete.score == 0.0 and not incomplete.solved and "did not complete" in incomplete.detail
    mismatched = reward_from_result(_result(["passed"] * 2), TASK, "soft")
    assert mismatched.score == 0.0 and "does not match" in mismatched.detail
    timed_out = reward_from_result(_result(["passed", "timed_out", "passed"]), TASK, "soft")
    assert timed_out.score == pytest.approx(0.25 + 0.5)


def test_code_reward_runs_the_completion_in_the_sandbox(verifier_config):
    assert code_reward("\n    return x + 1\n", TASK, "strict", verifier_config).score == 1.0
    # Right for small inputs only: the easy level passes, the hard test fails.
    partial = code_reward("\n    return x + 1 if x < 1000 else 0\n", TASK, "strict", verifier_config)
    assert partial.passed == (True, True, False) and partial.score == pytest.approx(0.5)
    # An early exit that skips the tests earns nothing.
    assert code_reward("\n    return x\nimport os\nos._exit(0)\n", TASK, "soft", verifier_config).score == 0.0
    assert code_reward("\n    return (\n", TASK, "soft", verifier_config).score == 0.0  # does not parse
