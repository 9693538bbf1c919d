"""Code rewards: plain functions from a completion and its task to a score, with the per-test detail.

Three schemes (MiMo-7B §3.3.1, Test Difficulty Driven Reward, IOI-style subtasks):

- ``binary``: 1 when every test passes, else 0 (the usual code reward; TDDR "off").
- ``strict``: the tests are grouped into difficulty levels (``Task.test_levels``, 0 = easiest, from
  ``mimo train calibrate``); a level earns its share only when all its tests *and every easier level's* pass.
- ``soft``: each level's share is split equally among its tests; the reward is the sum over passed tests.

Every level is worth the same share, 1 / (number of levels), so all schemes give 1 for a full solution and the
scores of different tasks compare (the report does not state its per-level values; this is our choice). A task
without levels is one level: strict is then binary, soft the fraction of tests passed.

No reward is granted on a run the verifier could not vouch for: a run that did not complete (killed, timed out as a
whole, tampered with its harness) scores 0 whatever it reported, and only tests whose outcome is ``passed`` count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from training.tasks.format import Task
from training.tasks.repo import RepoCheck, check_repo_completion
from training.verify import Outcome, VerifierConfig, VerifyResult, verify

Scheme = Literal["strict", "soft", "binary"]
SCHEMES: tuple[str, ...] = ("strict", "soft", "binary")


@dataclass(frozen=True)
class Reward:
    score: float  # in [0, 1]
    passed: tuple[bool, ...]  # per test
    levels: tuple[int, ...]  # per test (all 0 without calibration)
    solved: bool  # every test passed in a completed run
    detail: str = ""  # why the score is what it is, when it is not the plain sum

    def to_json(self) -> dict:
        return {"score": self.score, "solved": self.solved, "passed": list(self.passed), "levels": list(self.levels),
                "detail": self.detail}  # fmt: skip


def binary_score(passed: Sequence[bool]) -> float:
    return 1.0 if passed and all(passed) else 0.0


def strict_score(passed: Sequence[bool], levels: Sequence[int]) -> float:
    """Sum of 1/L for each level l whose tests, and those of every level below l, all passed."""
    ordered = sorted(set(levels))
    score = 0.0
    for level in ordered:
        if not all(ok for ok, at in zip(passed, levels) if at == level):
            break  # this level failed: it and every harder level earn nothing
        score += 1.0 / len(ordered)
    return score


def soft_score(passed: Sequence[bool], levels: Sequence[int]) -> float:
    """Sum over passed tests of 1 / (L · tests at that test's level)."""
    ordered = set(levels)
    per_level = {level: sum(1 for at in levels if at == level) for level in ordered}
    return sum(1.0 / (len(ordered) * per_level[at]) for ok, at in zip(passed, levels) if ok)


def score_tests(passed: Sequence[bool], levels: Sequence[int], scheme: Scheme) -> float:
    if scheme == "binary":
        return binary_score(passed)
    if scheme == "strict":
        return strict_score(passed, levels)
    if scheme == "soft":
        return soft_score(passed, levels)
    raise ValueError(f"unknown reward scheme {scheme!r}; use one of {', '.join(SCHEMES)}")


def reward_from_result(result: VerifyResult, task: Task, scheme: Scheme) -> Reward:
    """The reward of a verifier result for ``task`` (see the module docstring for what earns nothing)."""
    levels = tuple(task.test_levels) if task.test_levels is not None else (0,) * len(task.tests)
    if not result.completed or len(result.tests) != len(task.tests):
        why = "the run did not complete" if not result.completed else "the result does not match the task's tests"
        return Reward(0.0, (False,) * len(task.tests), levels, False, why)
    passed = tuple(test.outcome is Outcome.PASSED for test in result.tests)
    return Reward(round(score_tests(passed, levels, scheme), 9), passed, levels, result.passed)


def reward_from_repo_check(check: RepoCheck, task: Task, scheme: Scheme) -> Reward:
    """The reward of a repo task's pytest run (training.tasks.repo): nothing for a run that did not complete."""
    levels = tuple(task.test_levels) if task.test_levels is not None else (0,) * len(task.tests)
    if not check.completed:
        return Reward(0.0, (False,) * len(task.tests), levels, False, check.detail)
    return Reward(round(score_tests(check.passed, levels, scheme), 9), check.passed, levels, check.solved, check.detail)


def code_reward(completion: str, task: Task, scheme: Scheme = "strict", config: VerifierConfig | None = None) -> Reward:
    """The reward of one completion of ``task.model_prompt``: runs it in the sandbox against the task's tests
    (a repo task: its repository's pytest node ids, training.tasks.repo)."""
    if task.format == "repo":
        return reward_from_repo_check(check_repo_completion(task, completion), task, scheme)
    return reward_from_result(verify(task.job(task.program(completion)), config), task, scheme)
