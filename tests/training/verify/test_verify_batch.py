"""The batch interface for RL: many candidates against one problem's tests, per-test results in input order."""

from __future__ import annotations

from training.verify import Outcome, TestSuite, VerifierPool, functional_job, stdio_job, verify_batch

ADD_TESTS = ["assert add(1, 2) == 3", "assert add(2, 0) == 2"]


def test_batch_results_come_back_in_input_order_with_per_test_outcomes(verifier_config):
    suite = functional_job("", ADD_TESTS, name="add").suite
    codes = [
        "def add(a, b):\n    return a + b\n",
        "def add(a, b):\n    return a - b\n",
        "def add(a, b) return",
        "def add(a, b):\n    return 3\n",
    ]
    results = verify_batch(suite, codes, verifier_config)
    assert [r.name for r in results] == ["add#0", "add#1", "add#2", "add#3"]
    assert [r.passed for r in results] == [True, False, False, False]
    assert [[t.outcome for t in r.tests] for r in results] == [
        [Outcome.PASSED, Outcome.PASSED],
        [Outcome.FAILED, Outcome.PASSED],
        [Outcome.CRASHED, Outcome.CRASHED],
        [Outcome.PASSED, Outcome.FAILED],
    ]


def test_batch_on_a_long_lived_pool_and_stdio(verifier_config):
    suite = TestSuite(format="stdio", tests=stdio_job("", [("2", "4"), ("3", "6")]).tests, name="double")
    codes = ["print(2 * int(input()))", "print(int(input()) + 2)", "import sys\nsys.exit(3)"]
    with VerifierPool(verifier_config, workers=2) as pool:
        first = verify_batch(suite, codes, pool=pool)
        again = pool.verify_batch(suite, codes[:1])
    assert [r.pass_fraction for r in first] == [1.0, 0.5, 0.0]
    assert again[0].passed
