"""Running many jobs at once: two workers per core, each with its own sandbox slot, with back-pressure.

``VerifierPool.map`` pulls jobs from any iterable (a generator of model samples, say) only as workers free up, so
at most ``max_pending`` jobs are in memory at a time, and yields results in input order. Each worker keeps its
judge warm; every job gets a fresh candidate sandbox. ``verify_batch`` (many candidates, one problem) keeps each
worker's candidate sandbox warm instead, from batch to batch (see worker.py and docs/verifier.md for why that is
safe); a single job on the worker replaces it with a fresh one.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from training.verify.formats import Job, TestSuite
from training.verify.results import VerifyResult
from training.verify.sandbox import check_sandbox
from training.verify.verifier import run_job
from training.verify.worker import VerifierConfig, Worker


def default_workers() -> int:
    # Two per core: a run spends part of its life blocked (exec, namespace set-up and teardown, page faults),
    # and a second run per core fills that time.
    return 2 * (len(os.sched_getaffinity(0)) or 1)


class VerifierPool:
    """Threads that each drive one worker's sandboxes; the CPU work happens in the sandboxes."""

    def __init__(self, config: VerifierConfig | None = None, workers: int = 0, max_pending: int = 0):
        self.config = config or VerifierConfig()
        check_sandbox(self.config.sandbox)
        self.workers = workers or default_workers()
        self.max_pending = max_pending or 2 * self.workers
        self._idle: queue.Queue[Worker] = queue.Queue()
        self._held: list[Worker] = []
        try:
            for _ in range(self.workers):
                self._held.append(Worker(self.config))
        except BaseException:
            self._close_workers()
            raise
        for worker in self._held:
            self._idle.put(worker)
        self._room = threading.BoundedSemaphore(self.max_pending)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="mimo-verify")

    def submit(self, job: Job, warm: bool = False) -> Future[VerifyResult]:
        """Queues a job; blocks while ``max_pending`` jobs are already queued or running (back-pressure)."""
        self._room.acquire()
        future = self._executor.submit(self._run, job, warm)
        future.add_done_callback(lambda _: self._room.release())
        return future

    def map(self, jobs: Iterable[Job], warm: bool = False) -> Iterator[VerifyResult]:
        pending: deque[Future[VerifyResult]] = deque()
        for job in jobs:
            if len(pending) >= self.max_pending:
                yield pending.popleft().result()
            pending.append(self.submit(job, warm))
        while pending:
            yield pending.popleft().result()

    def verify_batch(self, suite: TestSuite, codes: Sequence[str]) -> list[VerifyResult]:
        """Every candidate in ``codes`` against one problem's tests, results in input order (see batch.py)."""
        jobs = (suite.job(code, name=f"{suite.name}#{i}") for i, code in enumerate(codes))
        return list(self.map(jobs, warm=True))

    def _run(self, job: Job, warm: bool) -> VerifyResult:
        worker = self._idle.get()
        try:
            return run_job(job, worker, warm)
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._close_workers()

    def _close_workers(self) -> None:
        for worker in self._held:
            worker.close()
        self._held.clear()

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
