"""Resource limits for one sandboxed run: one frozen dataclass, checked when it is made.

Where cgroups are available (cgroups.py), ``memory_mb``, ``processes`` and ``cpus`` bound the whole run, every
process of the candidate together; without them they fall back to per-process rlimits (address space, processes
per sandbox uid, CPU seconds).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

MAX_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Limits:
    test_timeout_s: float = 5.0  # wall clock per test
    startup_s: float = 5.0  # slack for the interpreter to start and the candidate to load
    max_run_s: float = 120.0  # the whole run never exceeds this, however many tests
    memory_mb: int = 1024  # the run's memory (cgroup), and each process's address space (RLIMIT_AS)
    processes: int = 32  # the run's processes and threads (pids cgroup); RLIMIT_NPROC per uid without one
    cpus: float = 1.0  # CPU share of the run (cgroup cpu quota), in cores
    tmpfs_mb: int = 64  # the work dir (/work, /tmp): a tmpfs of this size, all files together
    file_size_mb: int = 16  # RLIMIT_FSIZE: any one file written, and the captured output
    open_files: int = 64  # RLIMIT_NOFILE
    output_bytes: int = 64_000  # how much of the run's own stdout/stderr is kept for debugging
    test_output_bytes: int = 1_000_000  # stdio tests: how much of each program's stdout is compared

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"limit {field.name} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0 or (field.name.endswith("_s") and value > MAX_SECONDS):
                bound = f" and at most {MAX_SECONDS:g}" if field.name.endswith("_s") else ""
                raise ValueError(f"limit {field.name} must be a finite number above 0{bound}, got {value!r}")

    def run_timeout_s(self, n_tests: int) -> float:
        return min(self.max_run_s, self.startup_s + self.test_timeout_s * max(n_tests, 1))

    def cpu_s(self, n_tests: int) -> int:
        # A CPU-time cap just above the wall clock: it stops a spin even if the wall-clock kill were lost.
        return int(self.run_timeout_s(n_tests)) + 2

    def to_json(self) -> dict:
        return asdict(self)
