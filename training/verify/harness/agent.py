"""The candidate's side: ``python -I -S agent.pyc CONTROL_FD IN_PID_NAMESPACE WORK_DIR``, inside the candidate's sandbox.

The agent starts before any candidate code and never runs any itself: for each candidate (functional) or each
test (stdio) it forks a fresh child, and only the child loads candidate code. The agent holds nothing worth
stealing (no key, no tests, no expected values: those never enter this sandbox), makes itself non-dumpable
(another process of the sandbox's uid cannot open its /proc/<pid>/mem or fds; ptrace is denied by seccomp),
and after each child kills everything else in the sandbox's PID namespace.

Control messages (from the supervisor, marshal): ``functional`` with fds [channel to the judge, output], then the
child loads the code and answers the judge's calls; ``run`` with fds [stdin, stdout, stderr] runs the stdio
program once; ``reset`` clears the work dir between candidates. Replies go back as tagged JSON (wire.encode).

Calls (from the judge, marshal): ``(seq, name, args, kwargs, timeout_s)``. Replies (tagged JSON lists):
``["ok", seq, value, changed_args, changed_kwargs]``, ``["raised", seq, type_name, message, is_exception]``,
``["timeout", seq]``, ``["unplain", seq, what]``, ``["missing", seq]``. Top-level list, dict and set arguments
that the call mutated come back too, so the judge can copy the changes into its own objects.
"""

import _signal as signal  # the C module: "import signal" pulls in enum, ~6 ms of every run
import builtins
import marshal
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
import _socket  # noqa: E402
import select  # noqa: E402

import wire  # noqa: E402

MB = 1 << 20
WORK = sys.argv[3] if len(sys.argv) > 3 else "/work"  # the sandbox's tmpfs; a host temp dir when unsandboxed


class CallTimeout(BaseException):
    """The per-call alarm: a BaseException, so ``except Exception`` in the candidate does not swallow it."""


def set_limits(limits):
    """Per-process limits for the child; the sandbox's cgroup bounds all of its processes together."""
    wanted = [
        (resource.RLIMIT_AS, limits["memory_mb"] * MB),
        (resource.RLIMIT_CPU, limits["cpu_s"]),
        (resource.RLIMIT_FSIZE, limits["file_size_mb"] * MB),
        (resource.RLIMIT_CORE, 0),
    ]
    if limits.get("nproc"):
        wanted.append((resource.RLIMIT_NPROC, limits["nproc"]))
    for which, value in wanted:
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


def child_setup(fds, limits):
    """In a fresh child: its own process group, ``fds`` on 0, 1, 2 (None keeps /dev/null), nothing else open."""
    os.setpgid(0, 0)
    for target, fd in enumerate(fds):
        if fd is not None:
            os.dup2(fd, target)
    if not limits.get("keep_fd"):
        os.closerange(3, 1 << 16)
    set_limits(limits)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)


def describe(exc):
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - the candidate's __str__ may do anything
        text = "<unprintable>"
    return type(exc).__name__ + (": " + text if text else "")


# --- functional: the child serves the judge's calls ---------------------------------------------------------------


def serve(message, channel_fd, output_fd):
    """The candidate child: load the code, report the names the tests want, then answer calls until EOF."""
    limits = dict(message["limits"], keep_fd=True)
    child_setup([None, output_fd, output_fd], limits)
    channel = _socket.socket(fileno=channel_fd)
    channel.settimeout(None)
    os.closerange(3, channel_fd)
    os.closerange(channel_fd + 1, 1 << 16)

    def on_alarm(signum, frame):
        raise CallTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    namespace = {"__name__": "__candidate__", "__builtins__": builtins}
    try:
        signal.setitimer(signal.ITIMER_REAL, message["limits"]["startup_s"])
        exec(compile(message["code"], "candidate.py", "exec"), namespace)
        signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException as exc:  # noqa: BLE001 - whatever the candidate raises, its tests cannot run
        signal.setitimer(signal.ITIMER_REAL, 0)
        kind = "load_timeout" if isinstance(exc, CallTimeout) else "load_error"
        wire.send(channel, wire.encode([kind, describe(exc)[:500]]))
        os._exit(0)
    wire.send(channel, loaded_message(namespace, message["names"]))
    reader = wire.Reader(channel)
    while True:
        payload = reader.frame()
        if payload is None:
            flush_and_exit(0)
        wire.send(channel, answer(namespace, marshal.loads(payload)))


def loaded_message(namespace, names):
    callables, values, modules, others = [], {}, {}, {}
    for name in names:
        if name not in namespace:
            continue
        value = namespace[name]
        if type(value).__name__ == "module":
            modules[name] = getattr(value, "__name__", "")
        elif callable(value):
            callables.append(name)
        else:
            try:
                values[name] = wire.encode(value).decode("ascii")
            except wire.NotPlain as exc:
                others[name] = str(exc)
    return wire.encode(["loaded", callables, values, modules, others])


def answer(namespace, call):
    seq, name, args, kwargs, timeout_s = call
    function = namespace.get(name)
    if function is None or not callable(function):
        return wire.encode(["missing", seq])
    before = [_snapshot(a) for a in args], {k: _snapshot(v) for k, v in kwargs.items()}
    try:
        signal.setitimer(signal.ITIMER_REAL, max(timeout_s, 0.001))
        try:
            result = function(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except CallTimeout:
        return wire.encode(["timeout", seq])
    except BaseException as exc:  # noqa: BLE001 - crosses to the judge as a type name and a message
        return wire.encode(["raised", seq, type(exc).__name__, describe(exc)[:1000], isinstance(exc, Exception)])
    try:
        changed_args = {i: a for i, a in enumerate(args) if _changed(a, before[0][i])}
        changed_kwargs = {k: v for k, v in kwargs.items() if _changed(v, before[1][k])}
        return wire.encode(["ok", seq, result, changed_args, changed_kwargs])
    except wire.NotPlain as exc:
        return wire.encode(["unplain", seq, str(exc)])


def _snapshot(value):
    return marshal.dumps(value) if type(value) in (list, dict, set) else None


def _changed(value, snapshot):
    if snapshot is None:
        return False
    try:
        return marshal.dumps(value) != snapshot
    except ValueError:  # now holds something marshal cannot write: changed, and encode will say what
        return True


def flush_and_exit(status):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    os._exit(status)


# --- stdio: the child is the program ----------------------------------------------------------------------------


def run_program(code, fds, limits):
    """The program child: the test's pipes on 0, 1, 2, the code as __main__, Python's exit semantics."""
    child_setup(fds, limits)
    sys.stdin = open(0, encoding="utf-8", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.argv = ["solution.py"]
    namespace = {"__name__": "__main__", "__builtins__": builtins, "__file__": WORK + "/solution.py"}
    status = 0
    try:
        exec(compile(code, "solution.py", "exec"), namespace)
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()  # as the interpreter does: wait for the program's non-daemon threads
    except SystemExit as exc:
        status = exit_status(exc.code)
    except BaseException:  # noqa: BLE001 - printed like an uncaught exception, exit status 1
        sys.__excepthook__(*sys.exc_info())
        status = 1
    try:
        sys.stdout.flush()
    except BaseException:  # noqa: BLE001 - Python exits 120 when it cannot flush stdout
        status = status or 120
    flush_and_exit(status)


def exit_status(code):
    if code is None:
        return 0
    if type(code) is int:
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except BaseException:  # noqa: BLE001
        pass
    return 1


# --- the agent's loop ------------------------------------------------------------------------------------------


STOP_GRACE_S = 0.2  # after a stop, how long a child that is already on its way out may take to exit by itself
SETTLE_S = 2.0  # how long killing everything may take before the sandbox is reported unclean


def wait_child(pid, timeout_s, control):
    """Waits for the child, up to ``timeout_s``; after a ``stop`` from the supervisor, only a short grace."""
    pidfd = os.pidfd_open(pid)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready = select.select([pidfd, control], [], [], remaining)[0]
            if pidfd in ready:
                return True
            if control in ready:  # the supervisor is done with it (it only writes while we wait to say so)
                return bool(select.select([pidfd], [], [], STOP_GRACE_S)[0])
    finally:
        os.close(pidfd)


def finish_child(pid, in_pid_namespace):
    """Kills the child and everything it started; returns (its exit status, -N if killed by signal N; clean)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    _, status = os.waitpid(pid, 0)
    clean = kill_the_rest() if in_pid_namespace else True
    reap()
    return os.waitstatus_to_exitcode(status), clean


def kill_the_rest():
    """SIGKILLs every process of this PID namespace but init and ourselves until none is left (a fork bomb may
    still be forking while the first signal goes out); False if some survive ``SETTLE_S``."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        try:
            os.kill(-1, signal.SIGKILL)  # succeeds while any process (a zombie included) is left to signal
        except ProcessLookupError:
            return True
        except OSError:
            return False
        reap()
        time.sleep(0.001)
    return False


def reap():
    while True:  # our own children; orphans go to the namespace's init, which reaps them
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                return
        except ChildProcessError:
            return


def clear_work_dir(path=None):
    path = path or WORK
    for entry in os.scandir(path):
        try:
            if entry.is_dir(follow_symlinks=False):
                os.chmod(entry.path, 0o700)
                clear_work_dir(entry.path)
                os.rmdir(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def handle(message, fds, control, in_pid_namespace):
    op = message["op"]
    if op == "reset":
        clear_work_dir()
        return ["reset", True]
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        if op == "functional":
            serve(message, fds[0], fds[1])
        run_program(message["code"], fds, message["limits"])
    for fd in fds:
        os.close(fd)
    exited = wait_child(pid, message["timeout_s"], control)
    status, clean = finish_child(pid, in_pid_namespace)
    return [op, status, not exited, round(time.monotonic() - started, 6), clean]


def main():
    wire.make_undumpable()
    control = _socket.socket(fileno=int(sys.argv[1]))
    in_pid_namespace = sys.argv[2] == "1"
    reader = wire.Reader(control, accept_fds=True)
    wire.send(control, wire.encode(["ready"]))
    while True:
        payload = reader.frame()
        if payload is None:
            os._exit(0)
        message = marshal.loads(payload)
        if message["op"] == "stop":
            continue  # a stop that arrived after its child had already finished
        fds = reader.take_fds(message.get("fds", 0))
        wire.send(control, wire.encode(handle(message, fds, control, in_pid_namespace)))


if __name__ == "__main__":
    main()
