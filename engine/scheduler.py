"""Fair serving of concurrent requests: one worker thread steps every active job in turn (round-robin).

A step is one prefill or one decode step, so a long request delays a short one by at most one step per round
and never starves it, and a cancelled job is dropped before its next step: it stops using compute within one
step. The model runs in this thread, off the event loop, so streaming and cancellation stay responsive.

With ``step_all`` the round is one call that steps every active job at once, so a backend can batch their
model work (continuous batching: jobs join and leave between rounds); fairness and cancellation stay the same.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Protocol

from engine.api import EngineUnavailable, Overloaded


class Job(Protocol):
    cancelled: bool

    def step(self) -> bool:
        """Advances the job by one step; True when it has finished."""
        ...

    def fail(self, error: BaseException) -> None:
        """Reports an error to the job's consumer; the job is then dropped."""
        ...


class RoundRobinScheduler:
    def __init__(self, max_jobs: int = 64, setup=None, step_all: Callable[[list[Job]], list[bool]] | None = None):
        self.max_jobs = max_jobs
        self._step_all = step_all  # steps these jobs together; which of them finished
        self._setup = setup  # called once in the worker thread (e.g. to enter torch.inference_mode)
        self._incoming: queue.Queue[Job | None] = queue.Queue()
        self._active: list[Job] = []
        self._count_lock = threading.Lock()
        self._jobs = 0  # submitted and not yet finished
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, job: Job) -> None:
        with self._count_lock:
            if self._closed:
                raise EngineUnavailable("the engine is closed")
            if self._jobs >= self.max_jobs:
                raise Overloaded(f"the engine is busy with {self._jobs} requests; retry shortly")
            self._jobs += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mimo-native-engine", daemon=True)
                self._thread.start()
        self._incoming.put(job)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stops the worker after its current step; unfinished jobs get ``EngineUnavailable``."""
        with self._count_lock:
            self._closed = True
            thread = self._thread
        self._incoming.put(None)
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        if self._setup is not None:
            with self._setup():
                self._loop()
        else:
            self._loop()

    def _loop(self) -> None:
        while self._admit(block=not self._active):
            if self._step_all is not None:
                self._step_together(list(self._active))
                continue
            for job in list(self._active):
                self._step(job)
        for job in self._active:
            job.fail(EngineUnavailable("the engine was closed"))

    def _admit(self, block: bool) -> bool:
        """Moves newly submitted jobs to the active list; False once the scheduler is closing."""
        try:
            job = self._incoming.get(block=block)
            while True:
                if job is None:
                    return False
                self._active.append(job)
                job = self._incoming.get_nowait()
        except queue.Empty:
            return True

    def _step_together(self, jobs: list[Job]) -> None:
        live = [job for job in jobs if not job.cancelled]
        finished = [job for job in jobs if job.cancelled]
        if live:
            try:
                done = self._step_all(live)
            except Exception as error:  # the batch failed as a whole: fail its jobs, keep serving
                for job in live:
                    job.fail(error)
                done = [True] * len(live)
            finished += [job for job, job_done in zip(live, done) if job_done]
        for job in finished:
            self._finish(job)

    def _step(self, job: Job) -> None:
        finished = job.cancelled
        if not finished:
            try:
                finished = job.step()
            except Exception as error:  # a failing request must not take the others down
                job.fail(error)
                finished = True
        if finished:
            self._finish(job)

    def _finish(self, job: Job) -> None:
        self._active.remove(job)
        with self._count_lock:
            self._jobs -= 1
