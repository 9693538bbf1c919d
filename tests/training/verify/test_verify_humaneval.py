"""HumanEval pieces that need no sandbox: the pass@k estimator, stop-sequence truncation, the program layout."""

from __future__ import annotations

import math

import pytest

from training.verify.humaneval import job_for, load_problems, pass_at_k, report, truncate


@pytest.mark.parametrize("n, c, k", [(1, 0, 1), (1, 1, 1), (10, 3, 1), (10, 3, 5), (20, 1, 10), (200, 17, 100)])
def test_pass_at_k_matches_the_binomial_formula(n, c, k):
    expected = 1.0 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-9)


def test_pass_at_1_is_the_fraction_correct():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)


def test_report_averages_over_problems_and_counts_solved():
    problems = load_problems(2)
    results = {problems[0].task_id: [True, False], problems[1].task_id: [False, False]}
    summary = report(problems, results, samples=2)
    assert (summary.passed, summary.total) == (1, 2)
    assert summary.pass_at_k == {1: pytest.approx(0.25)}


def test_truncate_stops_at_the_next_top_level_statement():
    body = "    return x + 1\n"
    assert truncate(body + "\ndef other():\n    pass\n") == body
    assert truncate(body + "\nif __name__ == '__main__':\n    main()") == body
    assert truncate(body) == body


def test_the_problem_set_is_the_wheels_164():
    problems = load_problems()
    assert len(problems) == 164 and len({p.task_id for p in problems}) == 164
    job = job_for(problems[0], problems[0].canonical_solution)
    assert job.tests == (f"check({problems[0].entry_point})",) and "def check" in job.setup


def test_the_prompts_helpers_are_trusted_setup_not_the_candidates():
    problem = next(p for p in load_problems() if p.task_id == "HumanEval/32")
    job = job_for(problem, "    return 0.0\ndef poly(xs, x):\n    return 0.0\n")  # poly == 0 everywhere
    assert job.setup.index("def poly") < job.setup.index("def check")
    assert "def find_zero" not in job.setup
