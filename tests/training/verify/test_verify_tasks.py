"""The project's task set: every reference solution passes in the sandbox, and a wrong one does not."""

from __future__ import annotations

import pytest

from training.tasks import DIFFICULTIES, load_tasks
from training.verify import Outcome, VerifierPool


def test_the_set_has_both_formats_and_every_difficulty():
    tasks = load_tasks()
    assert len({t.id for t in tasks}) == len(tasks)
    for format in ("functional", "stdio"):
        assert {t.difficulty for t in load_tasks(format=format)} == set(DIFFICULTIES)
    assert all(len(t.tests) >= 3 for t in tasks)


@pytest.mark.slow
def test_every_reference_solution_passes_every_test(verifier_config):
    tasks = load_tasks()
    with VerifierPool(verifier_config) as pool:
        results = list(pool.map(t.job(t.solution) for t in tasks))
    failures = {t.id: r.tests for t, r in zip(tasks, results) if not r.passed}
    assert failures == {}


def test_a_stub_fails_every_task(verifier_config):
    tasks = load_tasks(difficulty="easy")
    with VerifierPool(verifier_config) as pool:
        results = list(
            pool.map(t.job(t.prompt + "    pass\n" if t.format == "functional" else "pass\n") for t in tasks)
        )
    assert not any(r.passed for r in results)
    assert all(r.completed for r in results)  # the harness ran every test; they just did not pass


@pytest.mark.slow
def test_a_quadratic_solution_times_out_on_the_large_input(verifier_config):
    task = next(t for t in load_tasks() if t.id == "count_primes")
    slow = task.prompt + "    return sum(all(k % d for d in range(2, k)) for k in range(2, n))\n"
    with VerifierPool(verifier_config) as pool:
        (result,) = pool.map([task.job(slow)])
    assert [t.outcome for t in result.tests][:4] == [Outcome.PASSED] * 4
    assert result.tests[-1].outcome is Outcome.TIMED_OUT
