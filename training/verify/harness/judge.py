"""The trusted side of a functional run: ``python -I -S judge.pyc CONTROL_FD``, in a sandbox of its own.

The judge runs the tests; the candidate never shares its process, memory, uid or namespaces. For each job the
supervisor sends (marshal: setup, tests, the names the tests use, limits) with a socket to the candidate's
agent, the judge forks a child that:

1. waits for the candidate to load and report the names the tests use: functions become proxies here, plain
   values are decoded here (exact types only), modules are imported here by name (never the candidate's objects);
   a candidate name that is a builtin never shadows the builtin;
2. runs the setup and each test here, against this interpreter's own builtins and modules. A call to a proxy
   sends ``(seq, name, args, kwargs, time left)`` to the candidate and decodes the reply with ``wire.decode``:
   the value is plain data of exact types, or the call raises (the candidate's exception type when it is a
   builtin one, ``CandidateError`` otherwise), or the test times out. When the call returned None (an in-place
   function), the lists, dicts and sets it mutated are updated here too; a call that returns a value never
   changes the tests' data (else ``assert f(xs) == sorted(xs)`` passes for an ``f`` that empties ``xs``);
3. writes one record per test to the supervisor (JSON): ``{"test": i, "outcome", "time", "detail"}``, then
   ``{"done": n, "alive": bool}``, or ``{"tests_error": ...}`` when the tests themselves are broken.

The parent only forks and waits, so one job's tests never see another's state.
"""

import builtins
import importlib
import json
import marshal
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
import _socket  # noqa: E402
import select  # noqa: E402

import wire  # noqa: E402

GRACE_S = 0.5  # how much longer than the candidate's own alarm the judge waits for a reply
PING_S = 1.0  # after the last test: how long a candidate may take to show it is still alive
BUILTIN_NAMES = frozenset(dir(builtins))


class TestTimeout(BaseException):
    """The test ran out of time (here or in the candidate)."""


class CandidateError(Exception):
    """The candidate raised an exception that is not a builtin one, or sent something that cannot cross."""


class CandidateCrashed(BaseException):
    """The candidate exited, was killed, stopped answering, or raised SystemExit and the like."""


def blocked_alarm(function):
    """Runs ``function`` with SIGALRM held back, so an alarm never lands in the middle of a message."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
    try:
        return function()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Candidate:
    """The connection to the candidate's process."""

    def __init__(self, channel):
        self.channel, self.reader = channel, wire.Reader(channel)
        self.seq, self.deadline, self.gone = 0, None, ""

    def receive(self, timeout_s):
        payload = blocked_alarm(lambda: self.reader.frame(timeout=max(timeout_s, 0.001)))
        if payload is None:
            raise EOFError()
        return wire.decode(payload)

    def call(self, name, args, kwargs):
        if self.gone:
            raise CandidateCrashed(self.gone)
        _check_plain(args, kwargs)
        self.seq += 1
        left = max(self.deadline - time.monotonic(), 0.001)
        try:
            blocked_alarm(lambda: self._send(marshal.dumps((self.seq, name, args, kwargs, left))))
            reply = self._reply(left + GRACE_S)
        except TimeoutError:
            raise TestTimeout() from None
        except (EOFError, OSError):
            self.gone = "the candidate's process ended before answering (it exited or was killed)"
            raise CandidateCrashed(self.gone) from None
        except wire.NotPlain as exc:
            self.gone = "the candidate answered with malformed data: %s" % (exc,)
            raise CandidateCrashed(self.gone) from None
        return self._settle(reply, args, kwargs)

    def _send(self, payload):
        self.channel.settimeout(max(self.deadline - time.monotonic(), 0.001) + GRACE_S)
        wire.send(self.channel, payload)

    def _reply(self, timeout_s):
        while True:  # a late answer to a call that already timed out is skipped
            reply = self.receive(timeout_s)
            if type(reply) is not list or len(reply) < 2 or type(reply[1]) is not int:
                raise wire.NotPlain("a reply that is not a list with a sequence number")
            if reply[1] == self.seq:
                return reply

    def _settle(self, reply, args, kwargs):
        kind = reply[0]
        if kind == "ok" and len(reply) == 5 and type(reply[3]) is dict and type(reply[4]) is dict:
            if reply[2] is None:  # an in-place function: its changes to the arguments are its answer
                _copy_back(args, reply[3])
                _copy_back(kwargs, reply[4])
            return reply[2]
        if kind == "timeout":
            raise TestTimeout()
        if kind == "raised" and len(reply) == 5:
            raise _candidate_exception(reply[2], reply[3], reply[4])
        if kind == "unplain" and len(reply) == 3:
            raise CandidateError("the candidate returned %s: only plain data crosses to the tests" % (reply[2],))
        if kind == "missing":
            raise CandidateError("the candidate no longer defines that function")
        raise CandidateCrashed("the candidate answered with a malformed reply")

    def ping(self):
        """Whether the candidate still answers (after the last test: the run ended with it alive)."""
        try:
            self.call("__mimo_ping__", (), {})
        except CandidateError:
            return True  # it answered ("missing"), so it is alive
        except BaseException:  # noqa: BLE001 - gone, timed out, or malformed: not alive
            return False
        return True


def _check_plain(args, kwargs):
    for where, value in [("argument %d" % i, a) for i, a in enumerate(args)] + list(kwargs.items()):
        try:
            wire.encode(value)
        except wire.NotPlain as exc:
            raise TypeError("%s is %s: only plain data crosses to the candidate" % (where, exc)) from None


def _copy_back(originals, changed):
    for key, value in changed.items():
        if type(originals) is tuple and not (type(key) is int and 0 <= key < len(originals)):
            continue
        if type(originals) is dict and key not in originals:
            continue
        original = originals[key]
        if type(original) is list and type(value) is list:
            original[:] = value
        elif type(original) in (dict, set) and type(value) is type(original):
            original.clear()
            original.update(value)


def _candidate_exception(name, message, is_exception):
    if type(name) is not str or type(message) is not str:
        return CandidateCrashed("the candidate answered with a malformed exception")
    if not is_exception:
        return CandidateCrashed(message)
    kind = getattr(builtins, name, None) if name in BUILTIN_NAMES else None
    exc = None
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            exc = kind(message.partition(": ")[2] if ": " in message else "")
        except Exception:  # noqa: BLE001 - a builtin that wants other arguments
            exc = None
    exc = exc if exc is not None else CandidateError(message)
    exc._candidate = True  # raised by the candidate: a setup that fails on it is the candidate's fault
    return exc


def make_proxy(candidate, name):
    def proxy(*args, **kwargs):
        return candidate.call(name, args, kwargs)

    proxy.__name__ = proxy.__qualname__ = name
    return proxy


def bind_names(hello, candidate):
    """The test namespace: this interpreter's builtins, plus the candidate's names the tests use, as data here."""
    namespace = {"__name__": "__tests__", "__builtins__": builtins}
    _, callables, values, modules, _others = hello
    for name in callables:
        if type(name) is str and name not in BUILTIN_NAMES:
            namespace[name] = make_proxy(candidate, name)
    for name, text in values.items():
        if type(name) is str and type(text) is str and name not in BUILTIN_NAMES:
            try:
                namespace[name] = wire.decode(text.encode())
            except wire.NotPlain:
                pass
    for name, module in modules.items():
        if type(name) is str and type(module) is str and name not in BUILTIN_NAMES and _standard(module):
            try:
                namespace[name] = importlib.import_module(module)
            except BaseException:  # noqa: BLE001 - not importable here: the tests will not find it
                pass
    return namespace


def _standard(module):
    """Only the standard library is imported here on the candidate's word (never ``__main__``: that is us)."""
    return module.partition(".")[0] in sys.stdlib_module_names and not module.startswith("__")


def describe(exc, others=None):
    text = str(exc)
    name = getattr(exc, "name", None) if isinstance(exc, NameError) else None
    if others and name in others:
        text += " (the candidate defines it as %s, which cannot cross: only functions and plain data do)" % (
            others[name],
        )
    return (type(exc).__name__ + (": " + text if text else ""))[:500]


def classify(exc):
    if isinstance(exc, AssertionError):
        return "failed"
    if isinstance(exc, TestTimeout):
        return "timed_out"
    return "crashed"


def _on_alarm(signum, frame):
    raise TestTimeout()


def run_timed(source, filename, namespace, candidate, timeout_s):
    """Runs ``source`` with a deadline shared by this side (the alarm) and the candidate's calls."""
    candidate.deadline = time.monotonic() + timeout_s
    signal.setitimer(signal.ITIMER_REAL, timeout_s + GRACE_S)
    try:
        exec(compile(source, filename, "exec"), namespace)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def run_job(job, channel_fd, emit):
    signal.signal(signal.SIGALRM, _on_alarm)
    limits, tests = job["limits"], job["tests"]
    candidate = Candidate(_socket.socket(fileno=channel_fd))
    hello = _hello(candidate, limits["startup_s"])
    if hello[0] != "loaded":
        outcome = "timed_out" if hello[0] == "load_timeout" else "crashed"
        for index in range(len(tests)):
            emit({"test": index, "outcome": outcome, "time": 0.0, "detail": "loading the code: " + hello[1]})
        return {"done": len(tests), "alive": False}
    namespace = bind_names(hello, candidate)
    try:
        run_timed(job["setup"], "setup.py", namespace, candidate, limits["startup_s"])
    except BaseException as exc:  # noqa: BLE001 - sorted below: the candidate's fault or the tests'
        if not _candidates_fault(exc, job["names"], namespace):
            return {"tests_error": "the tests' setup failed: " + describe(exc)}
        for index in range(len(tests)):
            emit({"test": index, "outcome": classify(exc), "time": 0.0, "detail": "setup: " + describe(exc)})
        return {"done": len(tests), "alive": candidate.ping()}
    for index, source in enumerate(tests):
        started = time.monotonic()
        try:
            run_timed(source, "test_%d.py" % index, namespace, candidate, limits["test_timeout_s"])
            outcome, detail = "passed", ""
        except BaseException as exc:  # noqa: BLE001 - sorted into failed / timed out / crashed
            outcome, detail = classify(exc), describe(exc, hello[4])
        emit({"test": index, "outcome": outcome, "time": round(time.monotonic() - started, 6), "detail": detail})
    candidate.deadline = time.monotonic() + min(limits["startup_s"], PING_S)
    return {"done": len(tests), "alive": candidate.ping()}


def _hello(candidate, timeout_s):
    try:
        hello = candidate.receive(timeout_s)
    except TimeoutError:
        return ["load_timeout", "no answer within %gs" % timeout_s]
    except (EOFError, OSError, wire.NotPlain):
        return ["load_error", "the candidate's process ended while loading (it exited or was killed)"]
    valid = type(hello) is list and hello and hello[0] in ("loaded", "load_error", "load_timeout")
    if not valid or (hello[0] == "loaded" and not _valid_loaded(hello)) or (hello[0] != "loaded" and len(hello) != 2):
        return ["load_error", "the candidate sent a malformed report"]
    return hello if hello[0] == "loaded" else [hello[0], str(hello[1])[:500]]


def _valid_loaded(hello):
    return len(hello) == 5 and type(hello[1]) is list and all(type(x) is dict for x in hello[2:])


def _candidates_fault(exc, names, namespace):
    if isinstance(exc, (CandidateError, CandidateCrashed, TestTimeout)) or getattr(exc, "_candidate", False):
        return True
    return isinstance(exc, NameError) and getattr(exc, "name", None) in names and exc.name not in namespace


def job_child(job, channel_fd, control):
    def emit(record):
        wire.send(control, json.dumps(record).encode())

    try:
        emit(run_job(job, channel_fd, emit))
    except BaseException as exc:  # noqa: BLE001 - the judge itself failed: say so, the supervisor decides
        emit({"judge_error": describe(exc)})
    os._exit(0)


def main():
    wire.make_undumpable()
    control = _socket.socket(fileno=int(sys.argv[1]))
    reader = wire.Reader(control, accept_fds=True)
    wire.send(control, json.dumps({"ready": True}).encode())
    while True:
        payload = reader.frame()
        if payload is None:
            os._exit(0)
        job = marshal.loads(payload)
        if job.get("op") == "abort":
            continue  # an abort that arrived after its job had already finished
        (channel_fd,) = reader.take_fds(1)
        pid = os.fork()
        if pid == 0:
            job_child(job, channel_fd, control)
        os.close(channel_fd)
        _wait_or_abort(pid, control, job["limits"]["run_s"])
        wire.send(control, json.dumps({"end": True}).encode())


def _wait_or_abort(pid, control, timeout_s):
    pidfd = os.pidfd_open(pid)
    try:
        ready = select.select([pidfd, control], [], [], timeout_s)[0]
    finally:
        os.close(pidfd)
    if pidfd not in ready:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
