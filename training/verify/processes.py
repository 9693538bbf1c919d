"""The two long-lived harness programs, each in a sandbox of its own, seen from the supervisor.

- ``AgentProcess``: the candidate's sandbox (harness/agent.py), as the slot's candidate uid in the candidate
  cgroup. It forks a fresh child per candidate (functional) or per test (stdio).
- ``JudgeProcess``: the trusted side (harness/judge.py), as the slot's judge uid in the judge cgroup. It forks
  a child per job that runs the tests and calls into the candidate over a socket pair.

Both talk to the supervisor over a control socket: the supervisor sends marshal (it is the trusted end), and
decodes what comes back with ``wire.decode`` / ``json`` only, never with marshal or pickle.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import marshal
import os
import shutil
import socket
import tempfile
import time

from training.verify.cgroups import Cgroup, CgroupSupport
from training.verify.harness import wire
from training.verify.limits import Limits
from training.verify.sandbox import (
    SANDBOX_HARNESS,
    SANDBOX_WORK,
    Mount,
    Rlimits,
    SandboxConfig,
    SandboxUnavailable,
    harness_dir,
    sandbox_argv,
    spawn,
)
from training.verify.seccomp import filter_fd

START_TIMEOUT_S = 30.0
SANDBOX_OVERHEAD_PROCESSES = 3  # bwrap's init, the agent, and the child it forks for the candidate
JUDGE_PROCESSES = 16
IDLE_SANDBOX_PROCESSES = 3  # bwrap (outside the PID namespace), its init, the agent
_COUNTER = itertools.count()
DIAGNOSTIC_BYTES = 4000


class HarnessFailure(RuntimeError):
    """A harness program died or broke its protocol; the worker replaces it."""


class SandboxedProgram:
    """One harness program in its own sandbox, with a control socket."""

    program = ""

    def __init__(self, config: SandboxConfig, limits: Limits, uid: int | None, cgroups: CgroupSupport | None):
        self.config = config
        # A group per sandbox, removed with it: this also drops what an exiting sandbox may leave counted (on some
        # kernels a v1 pids group keeps counting a task that the host's init reaped).
        self.cgroup = self._cgroup(cgroups, uid, limits)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.control, self.reader = ours, wire.Reader(ours)
        self.diagnostics = os.memfd_create(f"mimo-verify-{self.program}", 0)
        self._workdir = ""
        with contextlib.ExitStack() as stack:
            stack.callback(theirs.close)
            argv, cwd, fds = self._argv(limits, theirs.fileno(), stack)
            if uid is not None and self._workdir:
                os.chown(self._workdir, uid, uid)
            self.process = spawn(
                argv,
                uid=uid,
                cgroup=self.cgroup,
                rlimits=Rlimits(file_size_mb=limits.file_size_mb, open_files=max(limits.open_files, 32)),
                pass_fds=fds,
                stdout=self.diagnostics,
                stderr=self.diagnostics,
                cwd=cwd,
            )
        self._expect_ready()

    def _cgroup(self, support: CgroupSupport | None, uid: int | None, limits: Limits) -> Cgroup | None:
        if support is None or not support.available:
            return None
        name = f"{uid}-{self.program}-{next(_COUNTER)}"
        return Cgroup.create(support, name, *self.group_limits(limits))

    def group_limits(self, limits: Limits) -> tuple[int, int, float]:
        """(memory MiB, processes, CPUs) for this sandbox's cgroup."""
        return limits.memory_mb, limits.processes + SANDBOX_OVERHEAD_PROCESSES, limits.cpus

    def _argv(self, limits: Limits, fd: int, stack: contextlib.ExitStack) -> tuple[list[str], str | None, tuple]:
        interpreter, harness = self.config.interpreter(), harness_dir(self.config.interpreter())
        if self.config.unsafe_no_sandbox:
            self._workdir = tempfile.mkdtemp(prefix=f"mimo-verify-{self.program}-")
            command = [interpreter, "-I", "-S", f"{harness}/{self.program}.pyc", str(fd), "0", self._workdir]
            return command, self._workdir, (fd,)
        seccomp = filter_fd()
        stack.callback(os.close, seccomp)
        mounts = (Mount(str(harness), SANDBOX_HARNESS),)
        command = sandbox_argv(self.config, seccomp, limits.tmpfs_mb, mounts)
        command += [interpreter, "-I", "-S", f"{SANDBOX_HARNESS}/{self.program}.pyc", str(fd), "1", SANDBOX_WORK]
        return command, None, (fd, seccomp)

    def _expect_ready(self) -> None:
        try:
            ready = self.receive(START_TIMEOUT_S)
        except HarnessFailure as exc:
            detail = self.diagnostic_output().strip().splitlines()
            self.close()
            reason = detail[-1] if detail else str(exc)
            raise SandboxUnavailable(f"the {self.program} sandbox did not start: {reason}") from None
        if not ready:
            self.close()
            raise SandboxUnavailable(f"the {self.program} sandbox sent {ready!r} instead of its ready message")

    def send(self, message: dict, fds: tuple[int, ...] = ()) -> None:
        try:
            self.control.settimeout(START_TIMEOUT_S)
            wire.send(self.control, marshal.dumps(dict(message, fds=len(fds)), 4), fds)
        except OSError as exc:
            raise HarnessFailure(f"the {self.program} is gone ({exc})") from None

    def receive(self, timeout_s: float):
        """The next message (decoded), or HarnessFailure if none comes in ``timeout_s`` or the program is gone."""
        try:
            payload = self.reader.frame(timeout=max(timeout_s, 0.001))
        except (TimeoutError, OSError, wire.FrameTooLarge) as exc:
            raise HarnessFailure(f"the {self.program} did not answer ({type(exc).__name__})") from None
        if payload is None:
            raise HarnessFailure(f"the {self.program} exited")
        return self.decode(payload)

    def decode(self, payload: bytes):
        raise NotImplementedError

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def diagnostic_output(self) -> str:
        return os.pread(self.diagnostics, DIAGNOSTIC_BYTES, 0).decode("utf-8", "replace")

    def close(self) -> None:
        """Kills the sandbox and everything in it, and waits until its processes are gone."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, 9)
        self.process.wait()
        if self.cgroup is not None:
            self.cgroup.remove()
        self.control.close()
        with contextlib.suppress(OSError):
            os.close(self.diagnostics)
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)


class AgentProcess(SandboxedProgram):
    program = "agent"
    unclean = False  # something a child started outlived it: kill this sandbox instead of reusing it

    def decode(self, payload: bytes):
        try:
            message = wire.decode(payload)
        except wire.NotPlain as exc:
            raise HarnessFailure(f"the agent sent malformed data ({exc})") from None
        if type(message) is not list or not message or type(message[0]) is not str:
            raise HarnessFailure("the agent sent a malformed message")
        return message if message != ["ready"] else True

    def finished(self, op: str, timeout_s: float) -> tuple[int | None, bool, float]:
        """Waits for the agent's report on its child: (exit status, -N for a signal; timed out; seconds).

        HarnessFailure when the report is malformed, or when something the child started outlived it: then the
        sandbox is not reused."""
        message = self.receive(timeout_s)
        valid = len(message) == 5 and message[0] == op and type(message[1]) is int and type(message[2]) is bool
        if not valid or type(message[3]) not in (int, float) or type(message[4]) is not bool:
            raise HarnessFailure(f"the agent sent a malformed report: {message!r:.200}")
        if not message[4] or self._strays():
            self.unclean = True
        return message[1], message[2], float(message[3])

    def _strays(self) -> bool:
        """More processes in the sandbox's cgroup than bwrap, its init and the agent."""
        return self.cgroup is not None and len(self.cgroup.pids()) > IDLE_SANDBOX_PROCESSES

    def reset(self, timeout_s: float = 5.0) -> None:
        self.send({"op": "reset"})
        if self.receive(timeout_s) != ["reset", True]:
            raise HarnessFailure("the agent did not reset its work dir")


class JudgeProcess(SandboxedProgram):
    program = "judge"

    def group_limits(self, limits: Limits) -> tuple[int, int, float]:
        return limits.memory_mb, JUDGE_PROCESSES, limits.cpus

    def decode(self, payload: bytes):
        try:
            message = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise HarnessFailure(f"the judge sent malformed data ({exc})") from None
        if type(message) is not dict:
            raise HarnessFailure("the judge sent a malformed message")
        return message if message != {"ready": True} else True

    def records(self, timeout_s: float):
        """Yields the judge's messages for the current job until its end marker; HarnessFailure past ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            message = self.receive(deadline - time.monotonic())
            if message == {"end": True}:
                return
            yield message

    def abort(self, timeout_s: float = 5.0) -> bool:
        """Stops the current job; False when the judge did not confirm (close it then)."""
        try:
            self.send({"op": "abort"})
            for _ in self.records(timeout_s):
                pass
            return True
        except HarnessFailure:
            return False
