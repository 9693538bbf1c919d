"""Runs a command (a repository's test suite) in a bubblewrap sandbox with read-only binds and limits.

This is the adapter the miner and the repo-task verifier go through. The verifier's own sandbox
(training/verify/sandbox.py) runs its harness under /usr/bin/python3 with nothing else mounted; a repository's
tests need the user's interpreter and installed dependencies, which may live where an unprivileged uid cannot
traverse (a pyenv under /root). So when we are root, bwrap itself runs as root (it can bind those paths), with
every namespace but the user one unshared, and the command inside drops to one of the verifier's slot uids
with `setpriv` (no capabilities, no new privileges) before anything from the repository runs; `prlimit` sets
the per-process limits. The process-count limit holds because the slot's uid is not root. Without root, bwrap
runs as the caller in a new user namespace, as the verifier does.

Mounted: /usr, the interpreter's prefix and the virtual environment read-only, the repository read-only at
its own path (so imports resolve as they do outside), single files bound over it read-only (a candidate's
version of one module), and a private work folder as the only writable place (/tmp and the command's
results). No network, no host /tmp, no home.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from training.errors import UserError
from training.verify.slots import acquire_slot, release_slot, sweep

WORK = "/tmp"
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and util-linux (setpriv, prlimit)"


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 600.0
    memory_mb: int = 4096  # per process (RLIMIT_AS)
    processes: int = 64  # RLIMIT_NPROC of the slot's uid
    file_size_mb: int = 256
    open_files: int = 1024
    output_bytes: int = 200_000  # of the command's stdout + stderr, kept for errors


@dataclass(frozen=True)
class SandboxRun:
    exit_code: int | None
    timed_out: bool
    output: str
    seconds: float


@dataclass(frozen=True)
class Mounts:
    read_only: tuple[Path, ...] = ()  # host paths, bound at the same path
    files: dict[str, Path] = field(default_factory=dict)  # sandbox path -> host file bound read-only over it


def python_mounts(interpreter: str = sys.executable) -> tuple[Path, ...]:
    """What an interpreter needs besides /usr: its install prefix and, for a virtual environment, the venv."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    real = Path(os.path.realpath(interpreter))
    paths.add(real.parent.parent)
    return tuple(sorted(path for path in paths if not path.is_relative_to("/usr")))


def run_sandboxed(
    argv: list[str], mounts: Mounts, work: Path, env: dict[str, str], limits: SandboxLimits, cwd: str = WORK
) -> SandboxRun:
    """Runs `argv` in `cwd` with `work` (a host folder) as the writable /tmp; returns its exit code and output."""
    for tool in ("bwrap", "setpriv", "prlimit"):
        if shutil.which(tool) is None:
            raise UserError(f"{tool} not found: {INSTALL_HINT}")
    slot = acquire_slot()
    try:
        os.chown(work, slot.uid, slot.gid) if slot.dedicated else None
        command = _command(argv, mounts, work, env, limits, slot, cwd)
        return _execute(command, limits, slot)
    finally:
        if slot.dedicated:
            sweep(slot)
        release_slot(slot)


def _command(argv, mounts: Mounts, work: Path, env: dict, limits: SandboxLimits, slot, cwd: str) -> list[str]:
    as_root = os.geteuid() == 0
    command = ["bwrap", "--die-with-parent", "--new-session", "--clearenv"]
    command += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    command += ["--unshare-user"] if not as_root else ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    command += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64", "lib32"):
        path = Path("/") / name
        if path.is_symlink():
            command += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            command += ["--ro-bind", str(path), str(path)]
    # The work folder first: a repository that lives under the host's /tmp is then bound on top of it.
    command += ["--proc", "/proc", "--dev", "/dev", "--bind", str(work), WORK]
    for parent in _parents(mounts):  # else bwrap copies the host's modes: a 0700 /root would lock the slot out
        command += ["--perms", "0755", "--dir", str(parent)]
    for path in mounts.read_only:
        command += ["--ro-bind", str(path), str(path)]
    for inside, host in mounts.files.items():
        command += ["--ro-bind", str(host), inside]
    command += ["--chdir", cwd]
    command += ["--remount-ro", "/"]
    for name, value in {"PATH": "/usr/bin:/bin", "HOME": WORK, "TMPDIR": WORK, "LANG": "C.UTF-8", **env}.items():
        command += ["--setenv", name, value]
    command += ["--"]
    if as_root:
        command += ["setpriv", f"--reuid={slot.uid}", f"--regid={slot.gid}", "--clear-groups", "--inh-caps=-all",
                    "--bounding-set=-all", "--no-new-privs", "--"]  # fmt: skip
    command += [
        "prlimit", f"--as={limits.memory_mb << 20}", f"--nproc={limits.processes}",
        f"--fsize={limits.file_size_mb << 20}", f"--nofile={limits.open_files}", "--core=0",
        f"--cpu={int(limits.timeout_s) + 5}", "--",
    ]  # fmt: skip
    return command + list(argv)


def _parents(mounts: Mounts) -> list[Path]:
    """The folders above each bound path that bwrap must create (outside /usr), shallowest first."""
    parents = {parent for path in mounts.read_only for parent in Path(path).parents}
    skip = {Path("/"), Path("/usr"), Path(WORK)}
    return sorted((p for p in parents if p not in skip and not p.is_relative_to("/usr")), key=lambda p: len(p.parts))


def _execute(command: list[str], limits: SandboxLimits, slot) -> SandboxRun:
    started = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env={}, start_new_session=True
        )
        exit_code, timed_out = _wait_or_kill(process, limits.timeout_s)
        output.seek(0)
        text = output.read(limits.output_bytes).decode("utf-8", "replace")
    return SandboxRun(exit_code, timed_out, text, time.perf_counter() - started)


def _wait_or_kill(process: subprocess.Popen, timeout_s: float) -> tuple[int | None, bool]:
    pidfd = os.pidfd_open(process.pid)
    try:
        exited = bool(select.select([pidfd], [], [], timeout_s)[0])
    finally:
        os.close(pidfd)
    if exited:
        return process.wait(), False
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
    return None, True
