"""Starting processes inside bubblewrap sandboxes, with limits that hold for everything the sandbox runs.

One sandbox, as ``sandbox_argv`` builds it:
- bwrap with every namespace unshared (no network: only a loopback of its own), ``--disable-userns`` (no nested
  user namespaces), a new session (no TIOCSTI into our terminal), ``--die-with-parent``;
- a seccomp filter (seccomp.py) passed to bwrap as ``--seccomp FD``;
- a minimal filesystem: /usr read-only (with the usual /bin, /lib symlinks), a fresh /proc and /dev, read-only
  binds the caller names (the harness, a repository), and one writable place: ``/work``, a tmpfs of a fixed size
  (``/tmp`` is a symlink to it), so a run's files are bounded in total and never touch the host's disk;
- an empty environment (no host secrets).

``spawn`` starts such a command as a given uid, inside a cgroup (cgroups.py), with rlimits, through a tiny POSIX
shell that joins the cgroup and sets the limits before it execs ``setpriv`` and bwrap: the verifier never forks
itself (a trainer holding gigabytes would pay for every fork), and nothing the sandbox starts escapes the group.

``unsafe_no_sandbox`` runs the same command as a plain subprocess (limits and timeouts only). It exists for
machines without bubblewrap and must be asked for explicitly.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from training.errors import UserError
from training.verify.cgroups import Cgroup
from training.verify.seccomp import SeccompUnavailable, filter_fd

HARNESS_SOURCES = Path(__file__).parent / "harness"
HARNESS_MODULES = ("wire", "agent", "judge")
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: `dnf install bubblewrap`), "
    "or pass --unsafe-no-sandbox to run untrusted code without isolation"
)
SANDBOX_WORK = "/work"
SANDBOX_HARNESS = "/harness"
PROBE_UID = 60_999  # below the slots' uids; nothing outlives a probe
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "HOME": SANDBOX_WORK, "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
# Joins the cgroups named before "--", applies "ulimit:<flag>:<value>" arguments, then execs the rest. exit 125
# means the wrapper itself failed (no cgroup, a limit refused). POSIX sh, so it costs well under a millisecond.
WRAPPER = (
    'for a; do shift; [ "$a" = -- ] && exec "$@"; case $a in '
    "ulimit:*) f=${a#ulimit:}; ulimit -${f%%:*} ${f#*:} || exit 125;; "
    '*) echo $$ > "$a" || exit 125;; esac; done; exit 125'
)
WRAPPER_FAILED = 125


class SandboxUnavailable(UserError):
    """bubblewrap is missing or cannot create the sandbox here; the message says how to fix it."""


@dataclass(frozen=True)
class SandboxConfig:
    bwrap: str = "bwrap"
    python: str = ""  # the interpreter inside the sandbox; empty = the system's /usr/bin/python3
    unsafe_no_sandbox: bool = False

    def interpreter(self) -> str:
        return self.python or default_python()


@dataclass(frozen=True)
class Mount:
    """A read-only bind: ``source`` on the host appears at ``target`` inside (the same path when empty)."""

    source: str
    target: str = ""


def default_python() -> str:
    """A system interpreter an unprivileged uid can execute (pyenv's, under /root, it cannot)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    return os.path.realpath(shutil.which("python3") or "python3")


@functools.lru_cache(maxsize=8)
def check_sandbox(config: SandboxConfig) -> None:
    """Raises SandboxUnavailable unless bwrap can start the interpreter in the full sandbox (checked once per config)."""
    if config.unsafe_no_sandbox:
        return
    bwrap = shutil.which(config.bwrap)
    if bwrap is None:
        raise SandboxUnavailable(f"bubblewrap not found (looked for {config.bwrap!r}): {INSTALL_HINT}")
    try:
        seccomp = filter_fd()
    except SeccompUnavailable as exc:
        raise SandboxUnavailable(str(exc)) from None
    command = sandbox_argv(config, seccomp_fd=seccomp, tmpfs_mb=1)
    command += [config.interpreter(), "-I", "-S", "-c", "print(6 * 7)"]
    # Probe as an unprivileged uid, as the real runs do: bwrap then needs unprivileged user namespaces.
    as_user = {"user": PROBE_UID, "group": PROBE_UID, "extra_groups": []} if os.geteuid() == 0 else {}
    try:
        probe = subprocess.run(
            command, capture_output=True, text=True, timeout=30, env={}, pass_fds=(seccomp,), **as_user
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"bubblewrap at {bwrap} did not run: {exc}; {INSTALL_HINT}") from exc
    finally:
        os.close(seccomp)
    if probe.stdout.strip() != "42":
        reason = (probe.stderr.strip() or f"exit status {probe.returncode}").splitlines()[-1]
        raise SandboxUnavailable(f"bubblewrap at {bwrap} cannot create a sandbox here ({reason}); {INSTALL_HINT}")


@functools.lru_cache(maxsize=8)
def harness_dir(interpreter: str) -> Path:
    """The harness byte-compiled by the sandbox's interpreter into a world-readable dir, once per process."""
    digest = hashlib.sha256(interpreter.encode())
    for name in HARNESS_MODULES:
        digest.update((HARNESS_SOURCES / f"{name}.py").read_bytes())
    directory = Path(tempfile.mkdtemp(prefix=f"mimo-verify-harness-{digest.hexdigest()[:12]}-"))
    atexit.register(shutil.rmtree, directory, True)
    script = (
        "import py_compile, sys\n"
        "for name in sys.argv[3:]:\n"
        "    py_compile.compile(f'{sys.argv[1]}/{name}.py', cfile=f'{sys.argv[2]}/{name}.pyc', doraise=True)\n"
    )
    subprocess.run(
        [interpreter, "-I", "-S", "-c", script, str(HARNESS_SOURCES), str(directory), *HARNESS_MODULES],
        check=True,
        env={},
        capture_output=True,
        timeout=60,
    )
    directory.chmod(0o755)  # the sandboxes' uids must read it; only root can write it
    for path in directory.iterdir():
        path.chmod(0o644)
    return directory


def sandbox_argv(
    config: SandboxConfig,
    seccomp_fd: int,
    tmpfs_mb: int,
    mounts: tuple[Mount, ...] = (),
    cwd: str = SANDBOX_WORK,
    env: dict[str, str] | None = None,
) -> list[str]:
    """The bwrap command line (ending in ``--``) for one sandbox; append the command to run inside."""
    command = [config.bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent"]
    command += ["--new-session", "--clearenv", "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64", "lib32"):
        command += _root_entry(name)
    interpreter_root = _outside_usr(config.interpreter())
    if interpreter_root:
        command += ["--ro-bind", interpreter_root, interpreter_root]
    for mount in mounts:
        command += ["--ro-bind", mount.source, mount.target or mount.source]
    command += ["--proc", "/proc", "--dev", "/dev"]
    command += ["--size", str(tmpfs_mb << 20), "--tmpfs", SANDBOX_WORK, "--symlink", SANDBOX_WORK, "/tmp"]
    # The root itself is a tmpfs bwrap made; freeze it so only /work takes writes.
    command += ["--remount-ro", "/", "--remount-ro", "/dev", "--chdir", cwd, "--seccomp", str(seccomp_fd)]
    for name, value in (SANDBOX_ENV if env is None else env).items():
        command += ["--setenv", name, value]
    return command + ["--"]


def _root_entry(name: str) -> list[str]:
    path = Path("/") / name
    if path.is_symlink():  # merged /usr: /bin -> usr/bin
        return ["--symlink", os.readlink(path), str(path)]
    if path.is_dir():
        return ["--ro-bind", str(path), str(path)]
    return []


def _outside_usr(interpreter: str) -> str:
    """The install prefix to mount when the interpreter does not live under /usr (e.g. /opt/python)."""
    real = Path(interpreter).resolve()
    if real.is_relative_to("/usr"):
        return ""
    return str(real.parent.parent)


@dataclass(frozen=True)
class Rlimits:
    """Limits the wrapper shell sets for the whole sandbox (each process gets them; cgroups bound the sum)."""

    file_size_mb: int = 16
    open_files: int = 64
    processes: int = 0  # RLIMIT_NPROC, per uid: only where no pids cgroup does the job; 0 = leave it
    memory_mb: int = 0  # RLIMIT_AS per process: only where no memory cgroup does the job; 0 = leave it

    def wrapper_args(self) -> list[str]:
        args = ["ulimit:c:0", f"ulimit:f:{self.file_size_mb * 2048}", f"ulimit:n:{self.open_files}"]  # f: 512 B blocks
        if self.processes:
            args.append(f"ulimit:p:{self.processes}")
        if self.memory_mb:
            args.append(f"ulimit:v:{self.memory_mb * 1024}")
        return args


def spawn(
    command: list[str],
    *,
    uid: int | None,
    cgroup: Cgroup | None,
    rlimits: Rlimits,
    pass_fds: tuple[int, ...] = (),
    stdin=subprocess.DEVNULL,
    stdout=None,
    stderr=None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> subprocess.Popen:
    """Starts ``command`` as ``uid`` inside ``cgroup`` with ``rlimits``, in its own process group."""
    setpriv = shutil.which("setpriv") if uid is not None else None
    prefix = ["/bin/sh", "-c", WRAPPER, "sh", *(cgroup.procs_files if cgroup else []), *rlimits.wrapper_args(), "--"]
    as_user = {}
    if uid is not None and setpriv:
        prefix += [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    elif uid is not None:  # no setpriv: let Popen switch (it then forks instead of vforking)
        as_user = {"user": uid, "group": uid, "extra_groups": []}
    return subprocess.Popen(
        prefix + command,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=env if env is not None else {},
        cwd=cwd,
        pass_fds=pass_fds,
        start_new_session=True,
        **as_user,
    )
