"""The sandboxed code-test verifier: run untrusted candidate code against tests, get per-test outcomes.

See docs/verifier.md for what the sandbox covers and what it does not.
"""

from training.verify.batch import verify_batch
from training.verify.command import CommandResult, run_sandboxed
from training.verify.formats import Job, StdioCase, TestSuite, functional_job, stdio_job
from training.verify.limits import Limits
from training.verify.pool import VerifierPool
from training.verify.results import Outcome, Protections, TestResult, VerifyResult
from training.verify.sandbox import Mount, SandboxConfig, SandboxUnavailable
from training.verify.verifier import TestsError, VerifierConfig, verify

__all__ = [
    "CommandResult",
    "Job",
    "Limits",
    "Mount",
    "Outcome",
    "Protections",
    "SandboxConfig",
    "SandboxUnavailable",
    "StdioCase",
    "TestResult",
    "TestSuite",
    "TestsError",
    "VerifierConfig",
    "VerifierPool",
    "VerifyResult",
    "functional_job",
    "run_sandboxed",
    "stdio_job",
    "verify",
    "verify_batch",
]
