"""Repo tasks ("format": "repo", training/tasks/format.py) checked the way `mimo train repo` mined them: the file
rebuilt with the completion as the function's body, its pytest node ids run in the verifier's sandbox
(training.repo.mining.tasks.verify_completion), and the per-test outcomes read back.

The RL reward, `mimo eval tasks` and `Task`-level callers come here for a repo task instead of the verifier's
``TestSuite``, which only knows functional and stdio programs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.errors import UserError
from training.repo.mining.runner import RunLimits
from training.repo.mining.tasks import RepoTask, Verdict, verify_completion
from training.tasks.format import Task

DEFAULT_TIMEOUT_S = 120.0  # one task's tests, as the miner self-tests it


@dataclass(frozen=True)
class RepoCheck:
    """A completion's per-test outcome (in the task's test order) and whether the run vouches for it."""

    passed: tuple[bool, ...]
    completed: bool  # pytest ran to its end (exit 0 or 1): a timeout, a crash or a refused body is not
    solved: bool  # every test passed in a completed run that exited 0
    detail: str


def as_repo_task(task: Task) -> RepoTask:
    if task.format != "repo":
        raise ValueError(f"{task.id} is a {task.format} task, not a repo task")
    meta = task.meta
    if not Path(meta["repo"]).is_dir():
        raise UserError(f"repo task {task.id!r}: its repository {meta['repo']} is not there (moved or deleted?); "
                        "mine the tasks again with `mimo train repo PATH --tasks OUT.jsonl`")  # fmt: skip
    return RepoTask(
        id=task.id, prompt=task.prompt, tests=tuple(task.tests), solution=task.solution or task.prompt,
        source=task.source, repo=meta["repo"], path=meta["path"], function=meta["function"],
        lines=tuple(meta["lines"]), suffix=meta["suffix"], indent=meta["indent"], python=meta["python"],
    )  # fmt: skip


def check_repo_completion(task: Task, completion: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> RepoCheck:
    """Runs ``task``'s tests on its file with ``completion`` (what follows ``task.model_prompt``) as the body."""
    verdict = verify_completion(as_repo_task(task), completion, RunLimits(timeout_s=timeout_s))
    return from_verdict(task, verdict)


def from_verdict(task: Task, verdict: Verdict) -> RepoCheck:
    passed = tuple(verdict.outcomes.get(test) == "passed" for test in task.tests)
    if not verdict.completed or (all(passed) and not verdict.passed):  # every test "passed" yet pytest failed
        return RepoCheck((False,) * len(passed), False, False, verdict.detail or "the run did not complete")
    return RepoCheck(passed, True, verdict.passed, verdict.detail)
