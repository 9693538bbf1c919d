"""The harness that runs inside the sandbox: ``python -I -S runner.py functional|stdio JOB RESULTS_FD PIDNS``.

Trusted code. It starts before any candidate code, so it can take what it needs first:

- the run's secret key, read from stdin (a pipe the supervisor wrote and closed), after which stdin is /dev/null;
- references to every function it calls later (``exec``, ``os.write``, the MAC...), held in locals, so a candidate
  that patches ``builtins``, ``os`` or the harness module (``import __main__``) does not change what the harness does;
- a pristine copy of the builtins, which the tests run against.

Each result goes to RESULTS_FD (a file the supervisor reads after the run, outside the sandbox's filesystem) as
one line ``<mac> <repr of a dict>``, the MAC being keyed BLAKE2b over the repr. After the last test the harness
writes a ``done`` record and leaves with ``os._exit(0)``, so the candidate's ``atexit`` hooks and stray threads
never run after it. The supervisor trusts a test only with a valid record, and the whole run only with a valid
``done`` record and exit 0: a candidate that exits early (``sys.exit(0)`` before the asserts, ``os._exit``), kills
the harness or scribbles on the results fd simply leaves tests without records, and they count as crashed.

Not covered (the candidate runs in this very process): code that reads the key out of the harness's frames or memory
(``sys._getframe``, ``gc``, ``ctypes``) can forge records; objects whose ``__eq__`` always returns True, and patches
to modules the tests import (``math.isclose``), can fool an assert. Stdin/stdout tests are immune to both: their
expected outputs never enter the sandbox, and the comparison happens outside.
"""

import builtins
import marshal
import os
import resource
import signal
import sys
import time
from _blake2 import blake2b  # hashlib would load OpenSSL: milliseconds on every run

MB = 1024 * 1024


class _TestTimeout(BaseException):
    """Raised by the per-test alarm; a BaseException so ``except Exception`` in the candidate does not swallow it."""


def _set_limits(limits, n_tests):
    run_s = min(limits["max_run_s"], limits["startup_s"] + limits["test_timeout_s"] * max(n_tests, 1))
    cpu_s = int(run_s) + 2
    wanted = {
        resource.RLIMIT_AS: limits["memory_mb"] * MB,
        resource.RLIMIT_FSIZE: limits["file_size_mb"] * MB,
        resource.RLIMIT_NOFILE: limits["open_files"],
        resource.RLIMIT_NPROC: limits["processes"],
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_CPU: cpu_s,
    }
    for which, value in wanted.items():
        resource.setrlimit(which, (value, value))


def _make_emitter(key, results_fd):
    write, repr_, mac = os.write, repr, blake2b

    def emit(record):
        # A record is the repr of a dict of plain values: one line (repr escapes newlines), read by literal_eval.
        body = repr_(record).encode()
        write(results_fd, mac(body, key=key, digest_size=16).hexdigest().encode() + b" " + body + b"\n")

    return emit


def _describe(exc):
    text = type(exc).__name__ + (": " + str(exc) if str(exc) else "")
    return text[:500]


def run_functional(job, emit):
    # Everything used after the candidate has run is bound here, before it runs (see the module docstring).
    exec_, compile_, perf, setitimer = builtins.exec, builtins.compile, time.perf_counter, signal.setitimer
    dict_, enumerate_, classify, describe = dict, enumerate, _classify, _describe
    pristine_builtins = dict(builtins.__dict__)
    timeout_s, tests = job["limits"]["test_timeout_s"], job["tests"]

    def on_alarm(signum, frame):
        raise _TestTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    namespace = {"__name__": "__candidate__", "__builtins__": builtins}
    try:
        setitimer(signal.ITIMER_REAL, job["limits"]["startup_s"])
        exec_(compile_(job["code"], "candidate.py", "exec"), namespace)
        setitimer(signal.ITIMER_REAL, 0)
    except BaseException as exc:  # noqa: BLE001 - whatever the candidate raises, its tests cannot run
        setitimer(signal.ITIMER_REAL, 0)
        outcome = "timed_out" if isinstance(exc, _TestTimeout) else "crashed"
        for index in range(len(tests)):
            emit({"test": index, "outcome": outcome, "time": 0.0, "detail": "loading the code: " + describe(exc)})
        return
    # The tests see the candidate's names but run against the builtins as they were before the candidate ran.
    test_namespace = dict_(namespace, __builtins__=pristine_builtins, __name__="__tests__")
    exec_(compile_(job.get("setup", ""), "setup.py", "exec"), test_namespace)
    for index, source in enumerate_(tests):
        start = perf()
        try:
            setitimer(signal.ITIMER_REAL, timeout_s)
            exec_(compile_(source, "test_%d.py" % index, "exec"), test_namespace)
            setitimer(signal.ITIMER_REAL, 0)
            outcome, detail = "passed", ""
        except BaseException as exc:  # noqa: BLE001 - sorted into failed / timed out / crashed below
            setitimer(signal.ITIMER_REAL, 0)
            outcome, detail = classify(exc), describe(exc)
        emit({"test": index, "outcome": outcome, "time": round(perf() - start, 6), "detail": detail})


def _classify(exc, assertion_error=AssertionError, test_timeout=_TestTimeout, isinstance_=isinstance):
    # Defaults bind the real classes at import, before a candidate can rebind the names.
    if isinstance_(exc, assertion_error):
        return "failed"
    if isinstance_(exc, test_timeout):
        return "timed_out"
    return "crashed"


def run_stdio(job, emit):
    """Runs the program once per test with the test's input on stdin; the supervisor compares the outputs."""
    limits, in_pid_namespace = job["limits"], sys.argv[4] == "1"
    program = os.path.join(os.path.dirname(os.path.abspath(sys.argv[2])), "solution.py")
    for index, stdin_text in enumerate(job["tests"]):
        start = time.perf_counter()
        exit_code, timed_out, stdout = _run_program(program, stdin_text, limits, index)
        elapsed = round(time.perf_counter() - start, 6)
        # Whatever the program left behind (daemons, forks) dies before the next test starts.
        _kill_leftovers(in_pid_namespace)
        if timed_out:
            record = {"test": index, "outcome": "timed_out", "time": elapsed, "detail": "no exit within the timeout"}
        elif exit_code != 0:
            record = {"test": index, "outcome": "crashed", "time": elapsed, "detail": "exit status %d" % exit_code}
        else:
            record = {"test": index, "outcome": "ran", "time": elapsed, "stdout": stdout}
        emit(record)


def _run_program(program, stdin_text, limits, index):
    work = os.path.dirname(program)
    stdin_path, stdout_path = os.path.join(work, "in_%d" % index), os.path.join(work, "out_%d" % index)
    with open(stdin_path, "w") as handle:
        handle.write(stdin_text)
    stdout_fd = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    stdin_fd = os.open(stdin_path, os.O_RDONLY)
    actions = [
        (os.POSIX_SPAWN_DUP2, stdin_fd, 0),
        (os.POSIX_SPAWN_DUP2, stdout_fd, 1),
        (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
    ]
    pid = os.posix_spawn(
        sys.executable, [sys.executable, "-I", "-S", program], {"LANG": "C.UTF-8"}, file_actions=actions, setsid=True
    )
    os.close(stdin_fd)
    os.close(stdout_fd)
    exit_code, timed_out = _wait(pid, limits["test_timeout_s"])
    with open(stdout_path, "rb") as handle:
        stdout = handle.read(limits["test_output_bytes"]).decode("utf-8", "replace")
    return exit_code, timed_out, stdout


def _wait(pid, timeout_s):
    import select

    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd], [], [], timeout_s)
    os.close(pidfd)
    timed_out = not ready
    if timed_out:
        os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), timed_out


def _kill_leftovers(in_pid_namespace):
    if in_pid_namespace:
        # kill(-1) reaches every process in this PID namespace except init and the caller.
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while True:  # reap what was killed, so no zombie outlives the test
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                break
        except ChildProcessError:
            break


def main():
    key = os.read(0, 64)
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    mode, job_path, results_fd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.set_inheritable(results_fd, False)  # the programs of stdio tests must not get the results channel
    with open(job_path, "rb") as handle:
        job = marshal.load(handle)  # written by the supervisor: plain str / list / dict / number values
    _set_limits(job["limits"], len(job["tests"]))
    emit, exit_now = _make_emitter(key, results_fd), os._exit
    if mode == "functional":
        run_functional(job, emit)
    else:
        run_stdio(job, emit)
    emit({"done": len(job["tests"])})
    exit_now(0)


if __name__ == "__main__":
    main()
