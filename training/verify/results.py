"""What a verifier run returns: one record per test, and the run's verdict.

Plain frozen dataclasses so the RL rewards can pickle them across processes and read per-test outcomes.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass


class Outcome(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"  # ran to the end and gave a wrong answer (an assert failed, or stdout did not match)
    TIMED_OUT = "timed_out"  # hit the per-test or the whole-run wall clock
    CRASHED = "crashed"  # raised, exited, was killed, or never reported


@dataclass(frozen=True)
class TestResult:
    index: int
    outcome: Outcome
    time_s: float = 0.0
    detail: str = ""  # the error, the first differing line, or why no record came back

    __test__ = False  # not a pytest class


@dataclass(frozen=True)
class VerifyResult:
    """The verdict of running one candidate against its tests.

    ``passed`` is true only when every test passed and the harness proved it reached the end (see harness docs).
    """

    tests: tuple[TestResult, ...]
    completed: bool  # every test ran to an outcome and the candidate's process was still alive at the end
    exit_code: int | None
    timed_out: bool  # a test, or the whole run, hit its time limit
    wall_s: float
    sandboxed: bool
    output: str = ""  # the run's own stdout/stderr, capped: for debugging, never used for the verdict
    name: str = ""
    protections: Protections | None = None

    @property
    def passed(self) -> bool:
        return self.completed and bool(self.tests) and all(t.outcome is Outcome.PASSED for t in self.tests)

    @property
    def pass_fraction(self) -> float:
        if not self.tests:
            return 0.0
        return sum(t.outcome is Outcome.PASSED for t in self.tests) / len(self.tests)

    def to_json(self) -> dict:
        data = asdict(self)
        data["passed"] = self.passed
        data["tests"] = [dict(asdict(t), outcome=t.outcome.value) for t in self.tests]
        data["protections"] = self.protections.to_json() if self.protections else None
        return {"passed": data.pop("passed"), **data}


@dataclass(frozen=True)
class Protections:
    """Which protections were active for a run: what the JSON output's ``"protections"`` reports."""

    sandbox: str = "none"  # "bubblewrap", or "none" with --unsafe-no-sandbox
    seccomp: bool = False
    nested_userns_blocked: bool = False  # bwrap --disable-userns (and the seccomp filter's unshare/clone rules)
    work_tmpfs_mb: int | None = None  # /work (and /tmp) is a tmpfs of this size; None: a host directory
    cgroup: str = "none"  # "v2", "v1" or "none"
    memory_limit_mb: int | None = None  # for the whole run (cgroup); None: per process only (RLIMIT_AS)
    process_limit: int | None = None  # for the whole run (pids cgroup); None: per uid (RLIMIT_NPROC)
    cpu_limit_cores: float | None = None  # cgroup CPU quota; None: CPU seconds per process (RLIMIT_CPU)
    separate_uids: bool = False  # the candidate and the trusted side run as different unprivileged uids
    trusted_side: str = ""  # where the verdict is decided

    def to_json(self) -> dict:
        return asdict(self)
