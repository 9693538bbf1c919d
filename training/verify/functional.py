"""Running a functional job: the candidate in its sandbox, the tests in the judge's, plain data between them.

The supervisor connects the two with a socket pair, hands each its end, and reads the verdict from the judge
only. It never reads anything the candidate wrote except, for people debugging, its capped output.
"""

from __future__ import annotations

import ast
import builtins
import functools
import os
import socket
import time

from training.verify.formats import Job
from training.verify.processes import HarnessFailure
from training.verify.results import Outcome, TestResult, VerifyResult
from training.verify.slots import processes_of
from training.verify.worker import Worker

OUTCOMES = {o.value for o in Outcome}
BUILTIN_NAMES = frozenset(dir(builtins))
STOP_TIMEOUT_S = 5.0


class TestsError(ValueError):
    """The tests themselves are broken (a setup that fails on its own): the candidate is not to blame."""

    __test__ = False


def used_names(job: Job) -> list[str]:
    """The names the setup and the tests refer to that the candidate may define: what crosses at load time.

    A builtin name never does (``def abs(x): return 0`` must not change the tests' ``abs``)."""
    names = set().union(*(_names_in(source) for source in (job.setup, *job.tests)))
    return sorted(n for n in names if n not in BUILTIN_NAMES and not n.startswith("__"))


@functools.lru_cache(maxsize=4096)
def _names_in(source: str) -> frozenset[str]:
    return frozenset(node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name))


def child_limits(worker: Worker, n_tests: int) -> dict:
    limits = worker.limits
    controllers = worker.cgroups.controllers if worker.cgroups else ()
    return {
        "memory_mb": limits.memory_mb,
        "cpu_s": limits.cpu_s(n_tests),
        "file_size_mb": limits.file_size_mb,
        "nproc": 0 if "pids" in controllers else _nproc(worker),
        "startup_s": limits.startup_s,
    }


def _nproc(worker: Worker) -> int:
    """RLIMIT_NPROC counts every process of the uid: without a uid of our own (not root), leave room for the caller's."""
    extra = 0 if worker.slot.dedicated else len(processes_of(worker.slot.uid))
    return worker.limits.processes + extra


def run_functional(worker: Worker, job: Job, warm: bool = False) -> VerifyResult:
    limits, names = worker.limits, used_names(job)
    run_s = limits.run_timeout_s(len(job.tests))
    started = time.perf_counter()
    agent = worker.agent(warm)
    ooms = agent.cgroup.oom_kills() if agent.cgroup else 0
    judge_side, candidate_side = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    output = os.memfd_create("mimo-verify-output", 0)
    healthy = True
    try:
        message = {"op": "functional", "code": job.code, "names": names, "limits": child_limits(worker, len(job.tests))}
        agent.send(dict(message, timeout_s=run_s + STOP_TIMEOUT_S), (candidate_side.fileno(), output))
        candidate_side.close()
        judge = worker.judge()
        judge_limits = {"startup_s": limits.startup_s, "test_timeout_s": limits.test_timeout_s, "run_s": run_s}
        judge.send(
            {"op": "job", "setup": job.setup, "tests": list(job.tests), "names": names, "limits": judge_limits},
            (judge_side.fileno(),),
        )
        judge_side.close()
        records, end, timed_out = _collect(worker, len(job.tests), run_s)
        agent.send({"op": "stop"})
        status, _, _ = agent.finished("functional", STOP_TIMEOUT_S)
        oom = bool(agent.cgroup and agent.cgroup.oom_kills() > ooms)
    except HarnessFailure:
        healthy, records, end, timed_out, status, oom = False, {}, {}, False, None, False
    finally:
        judge_side.close()
        candidate_side.close()
        worker.release_agent(agent, healthy)
    text = os.pread(output, limits.output_bytes, 0).decode("utf-8", "replace")
    os.close(output)
    if "tests_error" in end:
        raise TestsError(str(end["tests_error"])[:500])
    tests = tuple(_test_result(i, records.get(i), timed_out, status, oom) for i in range(len(job.tests)))
    return VerifyResult(
        tests=tests,
        completed=bool(end.get("done") == len(job.tests) and end.get("alive") is True),
        exit_code=status,
        timed_out=timed_out or any(t.outcome is Outcome.TIMED_OUT for t in tests),
        wall_s=round(time.perf_counter() - started, 6),
        sandboxed=not worker.config.sandbox.unsafe_no_sandbox,
        output=text,
        name=job.name,
        protections=worker.protections,
    )


def _collect(worker: Worker, n_tests: int, run_s: float) -> tuple[dict[int, dict], dict, bool]:
    """The judge's records for this job, checked; the final message; whether the run's clock ran out."""
    judge, records, end = worker.judge(), {}, {}
    try:
        for message in judge.records(run_s + STOP_TIMEOUT_S):
            if _valid_record(message, n_tests):
                records.setdefault(message["test"], message)
            elif "done" in message or "tests_error" in message or "judge_error" in message:
                end = message
        return records, end, False
    except HarnessFailure:
        if not judge.abort():
            worker.drop_judge()
        return records, end, True


def _valid_record(message: dict, n_tests: int) -> bool:
    test, outcome, time_s = message.get("test"), message.get("outcome"), message.get("time")
    return (
        type(test) is int
        and 0 <= test < n_tests
        and outcome in OUTCOMES
        and type(time_s) in (int, float)
        and type(message.get("detail", "")) is str
    )


def _test_result(index: int, record: dict | None, timed_out: bool, status: int | None, oom: bool) -> TestResult:
    if record is None:
        if timed_out:
            return TestResult(index, Outcome.TIMED_OUT, 0.0, "the run hit its wall-clock limit before this test")
        return TestResult(index, Outcome.CRASHED, 0.0, "no result: the tests did not run to the end")
    detail = record.get("detail", "")
    if "process ended" in detail:
        detail += f" ({describe_status(status)}{'; the run hit its memory limit' if oom else ''})"
    return TestResult(index, Outcome(record["outcome"]), max(float(record["time"]), 0.0), detail[:500])


def describe_status(status: int | None) -> str:
    import signal

    if status is None:
        return "no exit status"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"
