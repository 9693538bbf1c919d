"""Running many jobs at once: two workers per core, each with its own sandbox slot, with back-pressure.

``VerifierPool.map`` pulls jobs from any iterable (a generator of model samples, say) only as workers free up, so
at most ``max_pending`` jobs are in memory at a time, and yields results in input order.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from training.verify.formats import Job, TestSuite
from training.verify.legacy_run import check_sandbox
from training.verify.results import VerifyResult
from training.verify.slots import Slot, acquire_slot, release_slot
from training.verify.verifier import VerifierConfig, run_job


def default_workers() -> int:
    # Two per core: a run spends part of its life blocked (exec, namespace set-up and teardown, page faults),
    # and a second run per core fills that time.
    return 2 * (len(os.sched_getaffinity(0)) or 1)


class VerifierPool:
    """Threads that each wait on one sandboxed process; the CPU work happens in the sandboxes."""

    def __init__(self, config: VerifierConfig | None = None, workers: int = 0, max_pending: int = 0):
        self.config = config or VerifierConfig()
        check_sandbox(self.config.sandbox)
        self.workers = workers or default_workers()
        self.max_pending = max_pending or 2 * self.workers
        self._slots: queue.Queue[Slot] = queue.Queue()
        self._held: list[Slot] = []
        try:
            for _ in range(self.workers):
                self._held.append(acquire_slot(self.config.uid_base))
        except RuntimeError:
            self._release_all()
            raise
        for slot in self._held:
            self._slots.put(slot)
        self._room = threading.BoundedSemaphore(self.max_pending)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="mimo-verify")

    def submit(self, job: Job) -> Future[VerifyResult]:
        """Queues a job; blocks while ``max_pending`` jobs are already queued or running (back-pressure)."""
        self._room.acquire()
        future = self._executor.submit(self._run, job)
        future.add_done_callback(lambda _: self._room.release())
        return future

    def map(self, jobs: Iterable[Job]) -> Iterator[VerifyResult]:
        pending: deque[Future[VerifyResult]] = deque()
        for job in jobs:
            if len(pending) >= self.max_pending:
                yield pending.popleft().result()
            pending.append(self.submit(job))
        while pending:
            yield pending.popleft().result()

    def verify_batch(self, suite: TestSuite, codes: Sequence[str]) -> list[VerifyResult]:
        """Every candidate in ``codes`` against one problem's tests, results in input order (see batch.py)."""
        return list(self.map(suite.job(code, name=f"{suite.name}#{i}") for i, code in enumerate(codes)))

    def _run(self, job: Job) -> VerifyResult:
        slot = self._slots.get()
        try:
            return run_job(job, slot, self.config)
        finally:
            self._slots.put(slot)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._release_all()

    def _release_all(self) -> None:
        for slot in self._held:
            release_slot(slot)
        self._held.clear()

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
