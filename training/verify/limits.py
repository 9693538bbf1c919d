"""Resource limits for one sandboxed run: one frozen dataclass, converted to rlimits inside the harness."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Limits:
    test_timeout_s: float = 5.0  # wall clock per test (SIGALRM in the harness; the run's clock backs it up)
    startup_s: float = 5.0  # slack for the interpreter to start and the candidate to load
    max_run_s: float = 120.0  # the whole run never exceeds this, however many tests
    memory_mb: int = 1024  # RLIMIT_AS
    file_size_mb: int = 16  # RLIMIT_FSIZE: any file written, the captured output and the result records
    open_files: int = 64  # RLIMIT_NOFILE
    processes: int = 32  # RLIMIT_NPROC: counted per uid, so each pool slot has its own uid
    output_bytes: int = 64_000  # how much of the run's own stdout/stderr is kept for debugging
    test_output_bytes: int = 1_000_000  # stdio tests: how much of each program's stdout is compared

    def run_timeout_s(self, n_tests: int) -> float:
        return min(self.max_run_s, self.startup_s + self.test_timeout_s * max(n_tests, 1))

    def cpu_s(self, n_tests: int) -> int:
        # A CPU-time cap just above the wall clock: it stops a spin even if the wall-clock kill were lost.
        return int(self.run_timeout_s(n_tests)) + 2

    def to_json(self) -> dict:
        return asdict(self)
