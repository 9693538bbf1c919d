"""Run one command in a sandbox with read-only binds and limits: the verifier's low-level building block.

    from training.verify import Mount, run_sandboxed
    run = run_sandboxed(["/usr/bin/python3", "-I", "-c", "print(1)"], mounts=[Mount("/srv/repo", "/repo")],
                        cwd="/repo", timeout_s=60)
    run.exit_code, run.stdout, run.stderr, run.timed_out, run.protections

The command runs in a fresh bubblewrap sandbox (sandbox.py: no network, no host files but /usr and the binds, all
read-only; ``/work`` and ``/tmp`` a tmpfs of ``tmpfs_mb``; seccomp; an empty environment unless ``env`` is given),
as an unprivileged uid of its own when the caller is root, inside a cgroup that bounds memory, processes and CPU
for everything it starts (rlimits where no cgroup is available). A bind's source must be readable by that uid.
At ``timeout_s`` every process of the sandbox is killed. stdout and stderr are captured up to ``output_bytes``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from training.verify.cgroups import Cgroup, CgroupSupport, detect
from training.verify.limits import Limits
from training.verify.results import Protections
from training.verify.sandbox import (
    SANDBOX_ENV,
    Mount,
    Rlimits,
    SandboxConfig,
    check_sandbox,
    sandbox_argv,
    spawn,
)
from training.verify.seccomp import filter_fd
from training.verify.slots import DEFAULT_UID_BASE, Slot, acquire_slot, release_slot, sweep


@dataclass(frozen=True)
class CommandResult:
    exit_code: int | None  # None when the command was killed at its timeout; 128 + N when killed by signal N
    stdout: bytes
    stderr: bytes
    timed_out: bool
    wall_s: float
    protections: Protections


def run_sandboxed(
    command: Sequence[str],
    *,
    mounts: Sequence[Mount | str] = (),
    cwd: str = "/work",
    env: Mapping[str, str] | None = None,
    stdin: bytes = b"",
    timeout_s: float = 60.0,
    limits: Limits | None = None,
    config: SandboxConfig | None = None,
    uid_base: int = DEFAULT_UID_BASE,
) -> CommandResult:
    """Runs ``command`` in a fresh sandbox and returns its exit code and capped output (see the module docstring).

    ``limits`` supplies memory_mb, processes, cpus, tmpfs_mb, file_size_mb, open_files and output_bytes.
    Raises SandboxUnavailable when bubblewrap cannot be used (and ``config.unsafe_no_sandbox`` is off).
    """
    config, limits = config or SandboxConfig(), limits or Limits(open_files=256, memory_mb=2048, processes=128)
    check_sandbox(config)
    binds = tuple(m if isinstance(m, Mount) else Mount(str(m)) for m in mounts)
    slot = acquire_slot(uid_base)
    group = _cgroup(slot, limits)
    try:
        return _run(list(command), binds, cwd, env, stdin, timeout_s, limits, config, slot, group)
    finally:
        if group is not None:
            group.remove()
        sweep(slot)
        release_slot(slot)


def _cgroup(slot: Slot, limits: Limits) -> Cgroup | None:
    support = detect()
    if not support.available or not slot.dedicated:
        return None
    return Cgroup.create(support, f"cmd-{slot.name}", limits.memory_mb, limits.processes, limits.cpus)


def _run(command, binds, cwd, env, stdin, timeout_s, limits, config, slot, group) -> CommandResult:
    environment = dict(SANDBOX_ENV if env is None else env)
    fds = [os.memfd_create(name, 0) for name in ("stdin", "stdout", "stderr")]
    os.write(fds[0], stdin)
    os.lseek(fds[0], 0, os.SEEK_SET)
    seccomp = -1
    with contextlib.ExitStack() as stack:
        for fd in fds:
            stack.callback(os.close, fd)
        if config.unsafe_no_sandbox:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="mimo-verify-cmd-"))
            if slot.dedicated:
                os.chown(workdir, slot.uid, slot.gid)
            argv, run_cwd = command, (workdir if cwd == "/work" else cwd)
        else:
            seccomp = filter_fd()
            stack.callback(os.close, seccomp)
            argv = sandbox_argv(config, seccomp, limits.tmpfs_mb, binds, cwd, environment) + command
            run_cwd, environment = None, {}
        started = time.perf_counter()
        process = spawn(
            argv,
            uid=slot.uid if slot.dedicated else None,
            cgroup=group,
            rlimits=_rlimits(limits, group),
            pass_fds=(seccomp,) if seccomp >= 0 else (),
            stdin=fds[0],
            stdout=fds[1],
            stderr=fds[2],
            env=environment,
            cwd=run_cwd,
        )
        exit_code, timed_out = wait_or_kill(process, timeout_s, group)
        wall_s = time.perf_counter() - started
        stdout, stderr = (os.pread(fd, limits.output_bytes, 0) for fd in fds[1:])
    support = group.support if group else None
    return CommandResult(exit_code, stdout, stderr, timed_out, wall_s, protections(config, limits, slot, support, ""))


def _rlimits(limits: Limits, group: Cgroup | None) -> Rlimits:
    controllers = group.support.controllers if group else ()
    return Rlimits(
        file_size_mb=limits.file_size_mb,
        open_files=limits.open_files,
        processes=0 if "pids" in controllers else limits.processes,
        memory_mb=0 if "memory" in controllers else limits.memory_mb,
    )


def wait_or_kill(process, timeout_s: float, group: Cgroup | None) -> tuple[int | None, bool]:
    """Waits up to ``timeout_s`` (woken by a pidfd the moment it exits); on expiry kills everything it started."""
    pidfd = os.pidfd_open(process.pid)
    try:
        exited = bool(select.select([pidfd], [], [], max(timeout_s, 0.0))[0])
    finally:
        os.close(pidfd)
    if not exited:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    code = process.wait()
    if group is not None:
        group.kill_all()
    return (code if exited else None), not exited


def protections(
    config: SandboxConfig, limits: Limits, slot: Slot, cgroups: CgroupSupport | None, trusted: str
) -> Protections:
    controllers = cgroups.controllers if cgroups else ()
    sandboxed = not config.unsafe_no_sandbox
    return Protections(
        sandbox="bubblewrap" if sandboxed else "none",
        seccomp=sandboxed,
        nested_userns_blocked=sandboxed,
        work_tmpfs_mb=limits.tmpfs_mb if sandboxed else None,
        cgroup=cgroups.version if cgroups else "none",
        memory_limit_mb=limits.memory_mb if "memory" in controllers else None,
        process_limit=limits.processes if "pids" in controllers else None,
        cpu_limit_cores=limits.cpus if "cpu" in controllers else None,
        separate_uids=slot.dedicated,
        trusted_side=trusted,
    )
