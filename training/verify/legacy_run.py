"""TEMPORARY: the previous harness runner, kept working while its replacement lands. Runs the harness under bubblewrap and returns the authenticated records it wrote.

The sandbox, per run:
- bwrap with every namespace unshared (no network: only a down loopback), a new PID namespace whose init dies with
  us (``--die-with-parent``), a new session (no TIOCSTI into our terminal);
- a minimal filesystem: /usr read-only (with the usual /bin, /lib symlinks), a fresh /proc and /dev, and the run's
  own work dir as the only writable place (also mounted on /tmp). Home directories, the project, other runs' work
  dirs and the host's /tmp are simply not there;
- an empty environment (no host secrets), the slot's own unprivileged uid (see slots.py), rlimits set by the
  harness before the candidate runs (address space, CPU, file size, open files, processes, no core dumps);
- a wall clock: on expiry the whole process group is SIGKILLed, the PID namespace dies with its init, and a sweep
  of the slot's uid makes sure nothing survived.

``unsafe_no_sandbox`` runs the same harness as a plain subprocess (rlimits and timeouts only). It exists for
machines without bubblewrap and must be asked for explicitly.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import dataclasses
import functools
import hashlib
import hmac
import marshal
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from training.verify.limits import Limits
from training.verify.slots import Slot, processes_of, sweep

HARNESS = Path(__file__).parent / "harness" / "runner.py"
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: `dnf install bubblewrap`), "
    "or pass --unsafe-no-sandbox to run untrusted code without isolation"
)
SANDBOX_WORK = "/work"
PROBE_UID = 60_999  # below the slots' uids; nothing outlives a probe
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "HOME": SANDBOX_WORK, "TMPDIR": "/tmp", "LANG": "C.UTF-8"}


from training.verify.sandbox import SandboxUnavailable  # noqa: E402


@dataclass(frozen=True)
class SandboxConfig:
    bwrap: str = "bwrap"
    python: str = ""  # the interpreter inside the sandbox; empty = the system's /usr/bin/python3
    unsafe_no_sandbox: bool = False

    def interpreter(self) -> str:
        return self.python or default_python()


@dataclass(frozen=True)
class HarnessRun:
    records: tuple[dict, ...]  # authenticated test records, in the order written
    done: bool  # the authenticated end-of-run record came back
    exit_code: int | None
    timed_out: bool
    wall_s: float
    output: str


def default_python() -> str:
    """A system interpreter an unprivileged uid can execute (pyenv's, under /root, it cannot)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    return os.path.realpath(shutil.which("python3") or "python3")


@functools.lru_cache(maxsize=8)
def check_sandbox(config: SandboxConfig) -> None:
    """Raises SandboxUnavailable unless bwrap can start the interpreter in the sandbox (checked once per config)."""
    if config.unsafe_no_sandbox:
        return
    bwrap = shutil.which(config.bwrap)
    if bwrap is None:
        raise SandboxUnavailable(f"bubblewrap not found (looked for {config.bwrap!r}): {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="mimo-verify-probe-") as work:
        (Path(work) / "tmp").mkdir()
        command = bwrap_command(config, Path(work)) + [config.interpreter(), "-I", "-S", "-c", "print(6 * 7)"]
        # Probe as an unprivileged uid, as the real runs do: bwrap then needs unprivileged user namespaces.
        as_user = {"user": PROBE_UID, "group": PROBE_UID, "extra_groups": []} if os.geteuid() == 0 else {}
        if as_user:
            for path in (work, f"{work}/tmp"):
                os.chown(path, PROBE_UID, PROBE_UID)
        try:
            probe = subprocess.run(command, capture_output=True, text=True, timeout=30, env={}, **as_user)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailable(f"bubblewrap at {bwrap} did not run: {exc}; {INSTALL_HINT}") from exc
    if probe.stdout.strip() != "42":
        reason = (probe.stderr.strip() or f"exit status {probe.returncode}").splitlines()[-1]
        raise SandboxUnavailable(f"bubblewrap at {bwrap} cannot create a sandbox here ({reason}); {INSTALL_HINT}")


@functools.lru_cache(maxsize=8)
def compiled_harness(interpreter: str) -> Path:
    """The harness byte-compiled by the sandbox's interpreter, once per process: compiling it costs every run ~4 ms."""
    digest = hashlib.sha256(HARNESS.read_bytes() + interpreter.encode()).hexdigest()[:16]
    directory = Path(tempfile.mkdtemp(prefix=f"mimo-verify-harness-{digest}-"))
    atexit.register(shutil.rmtree, directory, True)
    target = directory / "runner.pyc"
    script = "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)"
    subprocess.run(
        [interpreter, "-I", "-S", "-c", script, str(HARNESS), str(target)],
        check=True,
        env={},
        capture_output=True,
        timeout=60,
    )
    target.chmod(0o644)
    return target


def bwrap_command(config: SandboxConfig, work: Path) -> list[str]:
    command = [config.bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
    command += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64", "lib32"):
        command += _root_entry(name)
    interpreter_root = _outside_usr(config.interpreter())
    if interpreter_root:
        command += ["--ro-bind", interpreter_root, interpreter_root]
    command += ["--proc", "/proc", "--dev", "/dev"]
    command += ["--bind", str(work), SANDBOX_WORK, "--bind", str(work / "tmp"), "/tmp"]
    # The root itself is a tmpfs bwrap made; freeze it so only /work and /tmp take writes.
    command += ["--remount-ro", "/", "--remount-ro", "/dev", "--chdir", SANDBOX_WORK]
    for name, value in SANDBOX_ENV.items():
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


def run_harness(
    mode: str, job: dict, limits: Limits, slot: Slot, config: SandboxConfig, files: dict[str, str] | None = None
) -> HarnessRun:
    """Runs one job through the harness in a fresh work dir and returns what it proved."""
    check_sandbox(config)
    if not slot.dedicated:
        # RLIMIT_NPROC counts every process of the uid, and here the uid is the caller's own: leave room for those.
        limits = dataclasses.replace(limits, processes=limits.processes + len(processes_of(slot.uid)))
    with _work_dir() as work:
        # marshal (version 4, plain values only) loads with no import inside the sandbox, unlike json.
        (work / "job.marshal").write_bytes(marshal.dumps(dict(job, limits=limits.to_json()), 4))
        # A copy, so the sandbox needs no path into the project; the candidate may change it only once it is loaded.
        shutil.copyfile(compiled_harness(config.interpreter()), work / "runner.pyc")
        for name, text in (files or {}).items():
            (work / name).write_text(text)
        _give_to(work, slot)
        return _execute(mode, work, limits, len(job["tests"]), slot, config)


@contextlib.contextmanager
def _work_dir() -> Iterator[Path]:
    """A private work dir per run (mode 0700, handed to the slot's uid), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="mimo-verify-"))
    try:
        (path / "tmp").mkdir()
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _give_to(work: Path, slot: Slot) -> None:
    if os.geteuid() == 0 and slot.dedicated:
        for path in (work, work / "tmp", *work.glob("*")):
            os.chown(path, slot.uid, slot.gid)


def _execute(mode: str, work: Path, limits: Limits, n_tests: int, slot: Slot, config: SandboxConfig) -> HarnessRun:
    key = os.urandom(32)
    key_read, key_write = os.pipe()
    os.write(key_write, key)
    os.close(key_write)
    results_fd = os.memfd_create("mimo-verify-results")
    output_fd = os.memfd_create("mimo-verify-output")
    started = time.perf_counter()
    try:
        process = _spawn(mode, work, slot, config, key_read, results_fd, output_fd)
        exit_code, timed_out = _wait_or_kill(process, limits.run_timeout_s(n_tests))
        sweep(slot)
        wall_s = time.perf_counter() - started
        records, done = _authenticated(_read_all(results_fd, limits.file_size_mb << 20), key, n_tests)
        output = _read_all(output_fd, limits.output_bytes).decode("utf-8", "replace")
    finally:
        for fd in (key_read, results_fd, output_fd):
            os.close(fd)
    return HarnessRun(tuple(records), done, exit_code, timed_out, wall_s, output)


def _spawn(mode, work, slot, config, key_read, results_fd, output_fd) -> subprocess.Popen:
    inside = Path(SANDBOX_WORK) if not config.unsafe_no_sandbox else work
    harness = [
        config.interpreter(),
        "-I",
        "-S",
        str(inside / "runner.pyc"),
        mode,
        str(inside / "job.marshal"),
        str(results_fd),
        "1" if not config.unsafe_no_sandbox else "0",
    ]
    if config.unsafe_no_sandbox:
        command, env = harness, {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work / "tmp")}
    else:
        command, env = bwrap_command(config, work) + harness, {}
    as_user = {"user": slot.uid, "group": slot.gid, "extra_groups": []} if slot.dedicated else {}
    return subprocess.Popen(
        command,
        stdin=key_read,
        stdout=output_fd,
        stderr=output_fd,
        env=env,
        cwd=work,
        start_new_session=True,
        pass_fds=(results_fd,),
        **as_user,
    )


def _wait_or_kill(process: subprocess.Popen, timeout_s: float) -> tuple[int | None, bool]:
    # Popen.wait(timeout) polls with sleeps of up to 50 ms; a pidfd wakes us the moment the process exits.
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


def _read_all(fd: int, limit: int) -> bytes:
    return os.pread(fd, limit, 0)


def _authenticated(raw: bytes, key: bytes, n_tests: int) -> tuple[list[dict], bool]:
    """Keeps only records with a valid MAC, one per test index in range; ``done`` needs the right test count.

    Only authenticated lines reach ``literal_eval``, and it evaluates literals only."""
    records: dict[int, dict] = {}
    done = False
    for line in raw.split(b"\n"):
        mac, _, body = line.partition(b" ")
        expected = hashlib.blake2b(body, key=key, digest_size=16).hexdigest().encode()
        if not body or not hmac.compare_digest(expected, mac):
            continue
        record = ast.literal_eval(body.decode())
        if record.get("done") == n_tests:
            done = True
        elif isinstance(record.get("test"), int) and 0 <= record["test"] < n_tests:
            records.setdefault(record["test"], record)
    return [records[i] for i in sorted(records)], done
