"""Fixtures for the verifier tests: a real bubblewrap sandbox with short limits and a check that nothing survives.

The sandbox tests need root (each run gets its own uids: the candidate's and the judge's) and bubblewrap; without bwrap they skip with the install
hint, but a bwrap that is installed and cannot start a sandbox makes them fail.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from training.verify import Limits, SandboxConfig, VerifierConfig, functional_job, stdio_job, verify
from training.verify.slots import MAX_SLOTS, processes_of

TEST_UID_BASE = 62_000  # away from the default range, so a verifier running beside the tests is not counted


def _require_sandbox() -> None:
    assert shutil.which("bwrap"), "bubblewrap is not installed: run `make setup`"
    if os.geteuid() != 0:
        pytest.skip("the sandbox tests switch each run to its own uid, which needs root")


@pytest.fixture
def limits() -> Limits:
    return Limits(test_timeout_s=2.0, startup_s=3.0, max_run_s=8.0, memory_mb=512)


@pytest.fixture
def verifier_config(limits) -> VerifierConfig:
    _require_sandbox()
    return VerifierConfig(sandbox=SandboxConfig(), limits=limits, uid_base=TEST_UID_BASE)


def sandbox_processes() -> list[int]:
    """Live processes owned by any test slot's uid, candidate or judge (one pass over /proc)."""
    slot_uids = range(TEST_UID_BASE, TEST_UID_BASE + 2 * MAX_SLOTS)
    owners = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                owners[int(entry.name)] = entry.stat(follow_symlinks=False).st_uid
            except FileNotFoundError:
                continue
    return [pid for uid in {u for u in owners.values() if u in slot_uids} for pid in processes_of(uid)]


@pytest.fixture
def leftovers():
    """Call it to list processes still owned by a test slot's uid (should be none)."""
    return sandbox_processes


@pytest.fixture
def run_functional(verifier_config):
    """Runs candidate code against functional tests, then asserts no process of any test slot is left."""

    def run(code: str, tests: list[str], setup: str = "", config: VerifierConfig | None = None):
        result = verify(functional_job(code, tests, setup=setup), config or verifier_config)
        assert sandbox_processes() == [], "the run left processes behind"
        return result

    return run


@pytest.fixture
def run_stdio(verifier_config):
    def run(code: str, cases: list[tuple[str, str]]):
        result = verify(stdio_job(code, cases), verifier_config)
        assert sandbox_processes() == [], "the run left processes behind"
        return result

    return run


@pytest.fixture
def timer():
    class Timer:
        def __enter__(self):
            self.start = time.perf_counter()
            return self

        def __exit__(self, *exc):
            self.elapsed = time.perf_counter() - self.start

    return Timer
