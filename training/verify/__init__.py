"""The sandboxed code-test verifier: run untrusted candidate code against tests, get per-test outcomes.

See docs/verifier.md for what the sandbox covers and what it does not.
"""

from training.verify.batch import verify_batch
from training.verify.formats import Job, StdioCase, TestSuite, functional_job, stdio_job
from training.verify.limits import Limits
from training.verify.pool import VerifierPool
from training.verify.results import Outcome, TestResult, VerifyResult
from training.verify.sandbox import SandboxConfig, SandboxUnavailable
from training.verify.verifier import VerifierConfig, verify

__all__ = [
    "Job",
    "Limits",
    "Outcome",
    "SandboxConfig",
    "SandboxUnavailable",
    "StdioCase",
    "TestResult",
    "TestSuite",
    "VerifierConfig",
    "VerifierPool",
    "VerifyResult",
    "functional_job",
    "stdio_job",
    "verify",
    "verify_batch",
]
