"""Per-test outcomes through the real sandbox, the test formats, the pool, and refusing to run unsandboxed."""

from __future__ import annotations

import dataclasses
import json
import pickle
import threading

import pytest

from training.verify import (
    Outcome,
    SandboxConfig,
    SandboxUnavailable,
    VerifierPool,
    functional_job,
    verify,
)

ADD = "def add(a, b):\n    return a + b\n"


def test_each_test_gets_its_own_outcome_and_time(run_functional):
    result = run_functional(ADD, ["assert add(1, 2) == 3", "assert add(1, 1) == 3", "add(None, 1)"])
    assert [t.outcome for t in result.tests] == [Outcome.PASSED, Outcome.FAILED, Outcome.CRASHED]
    assert "TypeError" in result.tests[2].detail
    assert all(t.time_s >= 0 for t in result.tests)
    assert result.completed and not result.passed
    assert result.pass_fraction == pytest.approx(1 / 3)


def test_a_slow_test_times_out_and_the_next_still_runs(run_functional, limits):
    code = ADD + "import time\ndef slow():\n    time.sleep(30)\n"
    result = run_functional(code, ["slow()", "assert add(2, 2) == 4"])
    assert [t.outcome for t in result.tests] == [Outcome.TIMED_OUT, Outcome.PASSED]
    assert result.tests[0].time_s == pytest.approx(limits.test_timeout_s, abs=0.5)


def test_humaneval_style_check_function(run_functional):
    setup = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
    assert run_functional(ADD, ["check(add)"], setup=setup).passed
    assert not run_functional(ADD.replace("a + b", "a * b"), ["check(add)"], setup=setup).passed


def test_code_that_does_not_compile_crashes_every_test(run_functional):
    result = run_functional("def add(a, b) return a", ["assert add(1, 2) == 3", "assert True"])
    assert [t.outcome for t in result.tests] == [Outcome.CRASHED, Outcome.CRASHED]
    assert "SyntaxError" in result.tests[0].detail


def test_a_segfault_crashes_the_test_it_hit_and_the_rest(run_functional):
    code = ADD + "import ctypes\ndef boom():\n    ctypes.string_at(0)\n"
    result = run_functional(code, ["assert add(1, 1) == 2", "boom()", "assert add(2, 2) == 4"])
    assert [t.outcome for t in result.tests] == [Outcome.PASSED, Outcome.CRASHED, Outcome.CRASHED]
    assert "killed" in result.tests[1].detail and not result.completed


def test_stdio_outputs_are_compared_outside_the_sandbox(run_stdio):
    code = "a, b = map(float, input().split())\nprint(a / b)\n"
    result = run_stdio(code, [("1 3", "0.333333333"), ("1 2", "0.5\n"), ("1 4", "0.3"), ("1 0", "inf")])
    assert [t.outcome for t in result.tests] == [Outcome.PASSED, Outcome.PASSED, Outcome.FAILED, Outcome.CRASHED]
    assert "expected '0.3'" in result.tests[2].detail


def test_stdio_program_that_hangs_times_out(run_stdio):
    code = "import time\nif input() == 'hang':\n    time.sleep(30)\nprint('ok')\n"
    result = run_stdio(code, [("hang", "ok"), ("go", "ok")])
    assert [t.outcome for t in result.tests] == [Outcome.TIMED_OUT, Outcome.PASSED]


def test_json_output_has_a_top_level_passed_and_per_test_records(run_functional):
    data = run_functional(ADD, ["assert add(1, 2) == 3"]).to_json()
    assert data["passed"] is True
    assert data["tests"][0]["outcome"] == "passed" and "time_s" in data["tests"][0]
    json.dumps(data)  # plain data all the way down


def test_results_survive_pickling_for_reward_workers(run_functional):
    result = run_functional(ADD, ["assert add(1, 2) == 3", "assert add(1, 2) == 4"])
    copy = pickle.loads(pickle.dumps(result))
    assert copy == result and copy.pass_fraction == 0.5


def test_missing_bwrap_refuses_with_an_install_hint(verifier_config):
    config = dataclasses.replace(verifier_config, sandbox=SandboxConfig(bwrap="/nonexistent/bwrap"))
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        verify(functional_job(ADD, ["assert add(1, 2) == 3"]), config)


def test_unusable_bwrap_refuses(verifier_config):
    config = dataclasses.replace(verifier_config, sandbox=SandboxConfig(bwrap="/bin/false"))
    with pytest.raises(SandboxUnavailable, match="cannot create a sandbox"):
        verify(functional_job(ADD, ["assert add(1, 2) == 3"]), config)


def test_the_unsafe_flag_runs_without_bwrap_and_says_so(verifier_config):
    sandbox = SandboxConfig(bwrap="/nonexistent/bwrap", unsafe_no_sandbox=True)
    config = dataclasses.replace(verifier_config, sandbox=sandbox)
    result = verify(functional_job(ADD, ["assert add(1, 2) == 3", "assert add(1, 2) == 4"]), config)
    assert [t.outcome for t in result.tests] == [Outcome.PASSED, Outcome.FAILED]
    assert result.sandboxed is False


def test_pool_keeps_input_order_and_runs_in_parallel(verifier_config):
    jobs = [
        functional_job(f"import time\ntime.sleep({1.0 - 0.2 * i})", ["assert True"], name=f"job{i}") for i in range(4)
    ]  # the first job finishes last
    with VerifierPool(verifier_config, workers=4) as pool:
        # Every job waits at a barrier for the other three before it runs: one after another would never meet.
        together = threading.Barrier(4, timeout=60)
        run_one = pool._run

        def run_together(job, warm):
            together.wait()  # BrokenBarrierError unless all four run at once
            return run_one(job, warm)

        pool._run = run_together
        results = list(pool.map(jobs))
    assert [r.name for r in results] == ["job0", "job1", "job2", "job3"]
    assert all(r.passed for r in results)


def test_pool_pulls_jobs_lazily(verifier_config):
    pulled = []

    def jobs():
        for i in range(8):
            pulled.append(i)
            yield functional_job(f"v = {i}", [f"assert v == {i}"])

    with VerifierPool(verifier_config, workers=1, max_pending=2) as pool:
        stream = pool.map(jobs())
        first = next(stream)
        assert first.passed
        assert len(pulled) <= 3  # back-pressure: not the whole generator at once
        assert all(r.passed for r in stream)
    assert len(pulled) == 8


def test_submit_blocks_when_the_pool_is_full(verifier_config):
    slow = functional_job("import time\ntime.sleep(1)", ["assert True"])
    with VerifierPool(verifier_config, workers=1, max_pending=1) as pool:
        first = pool.submit(slow)
        submitted = threading.Event()
        thread = threading.Thread(target=lambda: (pool.submit(slow), submitted.set()))
        thread.start()
        assert not submitted.wait(0.3)  # held back while the first job is in flight
        assert first.result().passed
        thread.join(5)
        assert submitted.is_set()
