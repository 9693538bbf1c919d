"""Running a stdio job: the supervisor itself writes each test's stdin and reads its stdout, and compares outside.

The candidate's agent forks the program once per test with the three pipe ends the supervisor handed it; the
expected output never leaves this process. The agent reports only how the program ended (exit status, timeout),
and kills everything the program started before it does.
"""

from __future__ import annotations

import contextlib
import os
import select
import time

from training.verify.compare import compare_output
from training.verify.formats import Job, StdioCase
from training.verify.functional import child_limits, describe_status
from training.verify.processes import AgentProcess, HarnessFailure
from training.verify.results import Outcome, TestResult, VerifyResult
from training.verify.worker import Worker

REPORT_GRACE_S = 3.0  # how long past a test's timeout the agent may take to report it
CHUNK = 1 << 16


def run_stdio(worker: Worker, job: Job, warm: bool = False) -> VerifyResult:
    started = time.perf_counter()
    deadline = time.monotonic() + worker.limits.run_timeout_s(len(job.tests))
    agent = worker.agent(warm)
    output = os.memfd_create("mimo-verify-output", 0)
    results, healthy = [], True
    try:
        for index, case in enumerate(job.tests):
            assert isinstance(case, StdioCase)
            if time.monotonic() >= deadline:
                results.append(TestResult(index, Outcome.TIMED_OUT, 0.0, "the run hit its wall-clock limit first"))
                continue
            try:
                results.append(_run_case(worker, agent, job.code, index, case, output))
            except HarnessFailure as exc:
                healthy = False
                results.append(TestResult(index, Outcome.CRASHED, 0.0, f"the sandbox stopped answering ({exc})"))
                break
    finally:
        worker.release_agent(agent, healthy)
    results += [
        TestResult(i, Outcome.CRASHED, 0.0, "not run: the sandbox stopped answering")
        for i in range(len(results), len(job.tests))
    ]
    text = os.pread(output, worker.limits.output_bytes, 0).decode("utf-8", "replace")
    os.close(output)
    return VerifyResult(
        tests=tuple(results),
        completed=healthy,
        exit_code=0 if healthy else None,
        timed_out=any(r.outcome is Outcome.TIMED_OUT for r in results),
        wall_s=round(time.perf_counter() - started, 6),
        sandboxed=not worker.config.sandbox.unsafe_no_sandbox,
        output=text,
        name=job.name,
        protections=worker.protections,
    )


def _run_case(worker: Worker, agent: AgentProcess, code: str, index: int, case: StdioCase, output: int) -> TestResult:
    limits = worker.limits
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    try:
        message = {"op": "run", "code": code, "limits": child_limits(worker, 1), "timeout_s": limits.test_timeout_s}
        agent.send(message, (stdin_read, stdout_write, output))
    finally:
        os.close(stdin_read)
        os.close(stdout_write)
    try:
        stdout, overflow = _pump(stdin_write, case.input.encode("utf-8"), stdout_read, limits)
    finally:
        os.close(stdout_read)
    status, timed_out, time_s = agent.finished("run", limits.test_timeout_s + REPORT_GRACE_S)
    if timed_out:
        return TestResult(index, Outcome.TIMED_OUT, time_s, "no exit within the timeout")
    if overflow:  # checked first: the program usually dies of the pipe we closed on it
        return TestResult(index, Outcome.FAILED, time_s, f"more than {limits.test_output_bytes} bytes of output")
    if status != 0:
        return TestResult(index, Outcome.CRASHED, time_s, describe_status(status))
    comparison = compare_output(stdout.decode("utf-8", "replace"), case.output)
    return TestResult(index, Outcome.PASSED if comparison.equal else Outcome.FAILED, time_s, comparison.detail)


def _pump(stdin_fd: int, data: bytes, stdout_fd: int, limits) -> tuple[bytes, bool]:
    """Feeds ``data`` to the program and collects its stdout until it closes, up to the test's time and size."""
    os.set_blocking(stdin_fd, False)
    received, view, open_stdin = bytearray(), memoryview(data), True
    deadline = time.monotonic() + limits.test_timeout_s + REPORT_GRACE_S
    try:
        if not data:
            os.close(stdin_fd)
            open_stdin = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bytes(received), False
            writers = [stdin_fd] if open_stdin else []
            readable, writable, _ = select.select([stdout_fd], writers, [], remaining)
            if writable:
                view, open_stdin = _feed(stdin_fd, view)
            if readable:
                chunk = os.read(stdout_fd, CHUNK)
                if not chunk:
                    return bytes(received), False
                received += chunk
                if len(received) > limits.test_output_bytes:
                    return bytes(received[: limits.test_output_bytes]), True
    finally:
        if open_stdin:
            with contextlib.suppress(OSError):
                os.close(stdin_fd)


def _feed(fd: int, view: memoryview) -> tuple[memoryview, bool]:
    """Writes what the pipe takes now; closes it when all is written or the program stopped reading."""
    try:
        written = os.write(fd, view[:CHUNK])
    except BlockingIOError:
        return view, True
    except OSError:  # EPIPE: the program exited or closed its stdin
        os.close(fd)
        return view, False
    view = view[written:]
    if not view:
        os.close(fd)
        return view, False
    return view, True
