"""The verifier's Python API: a job in, a VerifyResult out.

    from training.verify import verify, functional_job
    result = verify(functional_job("def add(a, b): return a + b", ["assert add(1, 2) == 3"]))
    result.passed, [t.outcome for t in result.tests]

``verify`` runs one job; ``VerifierPool`` (pool.py) runs many in parallel; ``verify_batch`` (batch.py) runs many
candidates against one problem's tests. See docs/verifier.md for the threat model.
"""

from __future__ import annotations

from training.verify.formats import Job
from training.verify.functional import TestsError, run_functional
from training.verify.results import VerifyResult
from training.verify.stdio import run_stdio
from training.verify.worker import VerifierConfig, Worker

__all__ = ["TestsError", "VerifierConfig", "run_job", "verify"]


def verify(job: Job, config: VerifierConfig | None = None) -> VerifyResult:
    """Runs one job in a fresh sandbox.

    Raises SandboxUnavailable if bubblewrap cannot be used (and unsafe is off), and TestsError when the tests
    themselves are broken (their setup fails on its own); the candidate's failures are results, never exceptions.
    """
    with Worker(config or VerifierConfig()) as worker:
        return run_job(job, worker)


def run_job(job: Job, worker: Worker, warm: bool = False) -> VerifyResult:
    """Runs one job on ``worker``; ``warm`` reuses the worker's candidate sandbox (a batch for one problem)."""
    if job.format == "functional":
        return run_functional(worker, job, warm)
    return run_stdio(worker, job, warm)
