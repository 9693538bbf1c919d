"""The verifier's Python API: a job in, a VerifyResult out.

    from training.verify import verify, functional_job
    result = verify(functional_job("def add(a, b): return a + b", ["assert add(1, 2) == 3"]))
    result.passed, [t.outcome for t in result.tests]

``verify`` runs one job; ``VerifierPool`` (pool.py) runs many in parallel.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from training.verify.compare import compare_output
from training.verify.formats import Job, StdioCase
from training.verify.legacy_run import HarnessRun, check_sandbox, run_harness
from training.verify.limits import Limits
from training.verify.results import Outcome, TestResult, VerifyResult
from training.verify.sandbox import SandboxConfig
from training.verify.slots import DEFAULT_UID_BASE, Slot, acquire_slot, release_slot


@dataclass(frozen=True)
class VerifierConfig:
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    limits: Limits = field(default_factory=Limits)
    uid_base: int = DEFAULT_UID_BASE


def verify(job: Job, config: VerifierConfig | None = None) -> VerifyResult:
    """Runs one job in a fresh sandbox. Raises SandboxUnavailable if bubblewrap cannot be used (and unsafe is off)."""
    config = config or VerifierConfig()
    check_sandbox(config.sandbox)
    slot = acquire_slot(config.uid_base)
    try:
        return run_job(job, slot, config)
    finally:
        release_slot(slot)


def run_job(job: Job, slot: Slot, config: VerifierConfig) -> VerifyResult:
    if job.format == "functional":
        payload = {"code": job.code, "setup": job.setup, "tests": list(job.tests)}
        run = run_harness("functional", payload, config.limits, slot, config.sandbox)
    else:
        payload = {"tests": [case.input for case in job.tests]}
        run = run_harness("stdio", payload, config.limits, slot, config.sandbox, files={"solution.py": job.code})
    return to_result(job, run, sandboxed=not config.sandbox.unsafe_no_sandbox)


def to_result(job: Job, run: HarnessRun, sandboxed: bool) -> VerifyResult:
    by_index = {record["test"]: record for record in run.records}
    tests = tuple(_test_result(i, by_index.get(i), job, run) for i in range(len(job.tests)))
    return VerifyResult(
        tests=tests,
        completed=run.done and run.exit_code == 0,
        exit_code=run.exit_code,
        timed_out=run.timed_out,
        wall_s=round(run.wall_s, 6),
        sandboxed=sandboxed,
        output=run.output,
        name=job.name,
    )


def _test_result(index: int, record: dict | None, job: Job, run: HarnessRun) -> TestResult:
    if record is None:
        return _missing(index, run)
    time_s = float(record.get("time", 0.0))
    if record["outcome"] == "ran":  # stdio: the harness ran the program, the verdict is ours
        case = job.tests[index]
        assert isinstance(case, StdioCase)
        comparison = compare_output(record.get("stdout", ""), case.output)
        outcome = Outcome.PASSED if comparison.equal else Outcome.FAILED
        return TestResult(index, outcome, time_s, comparison.detail)
    try:
        outcome = Outcome(record["outcome"])
    except ValueError:
        return TestResult(index, Outcome.CRASHED, time_s, f"unknown outcome {record['outcome']!r}")
    return TestResult(index, outcome, time_s, str(record.get("detail", ""))[:500])


def _missing(index: int, run: HarnessRun) -> TestResult:
    """A test without an authenticated record never finished: the run was killed, exited early or was tampered with."""
    if run.timed_out:
        return TestResult(index, Outcome.TIMED_OUT, 0.0, "the run hit its wall-clock limit before this test finished")
    return TestResult(index, Outcome.CRASHED, 0.0, f"no result: the run {_describe_exit(run.exit_code)} first")


def _describe_exit(code: int | None) -> str:
    # Popen reports a signal as -N; bwrap passes its child's death by signal N on as status 128 + N.
    number = -code if code is not None and code < 0 else (code - 128 if code is not None and code > 128 else 0)
    if number:
        try:
            return f"was killed by {signal.Signals(number).name}"
        except ValueError:
            return f"was killed by signal {number}"
    return f"exited with status {code}"
