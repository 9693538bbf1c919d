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
    completed: bool  # the harness reported the end-of-run nonce and exited with status 0
    exit_code: int | None
    timed_out: bool
    wall_s: float
    sandboxed: bool
    output: str = ""  # the run's own stdout/stderr, capped: for debugging, never used for the verdict
    name: str = ""

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
        return {"passed": data.pop("passed"), **data}
