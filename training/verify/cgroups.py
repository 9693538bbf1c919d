"""Per-run limits from cgroups: memory, process count and CPU for everything one sandbox runs, together.

Detected at run time, never assumed, in this order:
- **cgroup v2**, where the verifier's own cgroup already delegates the ``memory`` and ``pids`` controllers to its
  children (``cgroup.subtree_control``); ``cpu`` is used when delegated too;
- **cgroup v1**, where the ``memory`` and ``pids`` hierarchies are mounted and writable (``cpu`` when it is too);
- **none**: per-process rlimits only (address space, ``RLIMIT_NPROC`` per sandbox uid, CPU seconds). The JSON
  output says so (``"cgroup": "none"``).

The groups are created under the verifier's own cgroup in each hierarchy, so the machine's or container's limits
still hold above them. The verifier never moves itself: a sandbox joins its group through the tiny shell that
starts it (``sandbox.spawn``), before bwrap forks anything.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("memory", "pids", "cpu")
REQUIRED = ("memory", "pids")
PREFIX = "mimo-verify"
CPU_PERIOD_US = 100_000


@dataclass(frozen=True)
class CgroupSupport:
    version: str  # "v2", "v1" or "none"
    bases: tuple[tuple[str, str], ...] = ()  # (controller, the directory new groups go in); v2: one entry, "all"
    controllers: tuple[str, ...] = ()
    reason: str = ""  # why cgroups are not used, when they are not

    @property
    def available(self) -> bool:
        return self.version != "none"


@functools.lru_cache(maxsize=1)
def detect() -> CgroupSupport:
    """What this machine lets the verifier use (checked once per process)."""
    mounts = _mounts()
    membership = _membership()
    support = _detect_v2(mounts, membership)
    if not support.available:
        v1 = _detect_v1(mounts, membership)
        support = v1 if v1.available else CgroupSupport("none", reason=f"{support.reason}; {v1.reason}")
    _remove_stale(support)
    return support


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, filesystem type, super options) of every cgroup mount."""
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                found.append((fields[4].replace("\\040", " "), tail[0], set(tail[2].split(","))))
    return found


def _membership() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path."""
    paths = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    return paths


def _detect_v2(mounts, membership) -> CgroupSupport:
    point = next((m for m, kind, _ in mounts if kind == "cgroup2"), None)
    if point is None or "" not in membership:
        return CgroupSupport("none", reason="no cgroup v2 mount")
    base = Path(point) / membership[""].lstrip("/")
    try:
        delegated = (base / "cgroup.subtree_control").read_text().split()
    except OSError:
        return CgroupSupport("none", reason=f"cannot read {base}/cgroup.subtree_control")
    missing = [c for c in REQUIRED if c not in delegated]
    if missing:
        return CgroupSupport("none", reason=f"cgroup v2 at {base} does not delegate {', '.join(missing)}")
    if not _can_create(base):
        return CgroupSupport("none", reason=f"cannot create cgroups under {base}")
    controllers = tuple(c for c in CONTROLLERS if c in delegated)
    return CgroupSupport("v2", bases=(("all", str(base)),), controllers=controllers)


def _detect_v1(mounts, membership) -> CgroupSupport:
    bases = []
    for controller in CONTROLLERS:
        point = next((m for m, kind, options in mounts if kind == "cgroup" and controller in options), None)
        if point is None or controller not in membership:
            continue
        base = Path(point) / membership[controller].lstrip("/")
        if _can_create(base):
            bases.append((controller, str(base)))
    found = tuple(c for c, _ in bases)
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        return CgroupSupport("none", reason=f"no writable cgroup v1 {', '.join(missing)} hierarchy")
    return CgroupSupport("v1", bases=tuple(bases), controllers=found)


def _can_create(base: Path) -> bool:
    probe = base / f"{PREFIX}-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
        return True
    except OSError:
        return False


@dataclass
class Cgroup:
    """One group (a directory per v1 hierarchy, or one v2 directory) holding one sandbox's processes."""

    support: CgroupSupport
    dirs: dict[str, Path]  # controller ("all" for v2) -> directory

    @classmethod
    def create(cls, support: CgroupSupport, name: str, memory_mb: int, processes: int, cpus: float) -> Cgroup:
        dirs = {}
        for controller, base in support.bases:
            path = Path(base) / f"{PREFIX}-{os.getpid()}-{name}"
            with contextlib.suppress(FileExistsError):
                path.mkdir()
            dirs[controller] = path
        group = cls(support, dirs)
        group.set_limits(memory_mb, processes, cpus)
        return group

    def set_limits(self, memory_mb: int, processes: int, cpus: float) -> None:
        memory, quota = memory_mb << 20, int(cpus * CPU_PERIOD_US)
        if self.support.version == "v2":
            self._write("all", "memory.max", memory)
            self._write("all", "memory.swap.max", 0, optional=True)
            self._write("all", "pids.max", processes)
            if "cpu" in self.support.controllers:
                self._write("all", "cpu.max", f"{quota} {CPU_PERIOD_US}")
            return
        self._write("memory", "memory.limit_in_bytes", memory)
        self._write("memory", "memory.memsw.limit_in_bytes", memory, optional=True)  # no swapping past the limit
        self._write("pids", "pids.max", processes)
        if "cpu" in self.dirs:
            self._write("cpu", "cpu.cfs_period_us", CPU_PERIOD_US)
            self._write("cpu", "cpu.cfs_quota_us", quota)

    def _write(self, controller: str, name: str, value, optional: bool = False) -> None:
        try:
            (self.dirs[controller] / name).write_text(str(value))
        except OSError:
            if not optional:
                raise

    @property
    def procs_files(self) -> list[str]:
        """The files a new process writes its pid to, to join this group in every hierarchy."""
        return [str(path / "cgroup.procs") for path in self.dirs.values()]

    def pids(self) -> list[int]:
        path = self.dirs.get("pids", self.dirs.get("all"))
        try:
            return [int(line) for line in (path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def oom_kills(self) -> int:
        """How many processes the memory limit has killed in this group so far."""
        name = "memory.events" if self.support.version == "v2" else "memory.oom_control"
        path = self.dirs.get("all" if self.support.version == "v2" else "memory")
        with contextlib.suppress(OSError, ValueError):
            for line in (path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def kill_all(self, attempts: int = 200) -> int:
        """SIGKILLs every process in the group until it is empty; returns how many were signalled."""
        if self.support.version == "v2" and self._kill_v2():
            return 0
        killed = 0
        for _ in range(attempts):
            pids = self.pids()
            if not pids:
                return killed
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
            time.sleep(0.001)
        raise RuntimeError(f"processes in {self.dirs} survive SIGKILL: {self.pids()}")

    def _kill_v2(self) -> bool:
        path = self.dirs["all"] / "cgroup.kill"
        if not path.exists():
            return False
        path.write_text("1")
        for _ in range(1000):
            if not self.pids():
                return True
            time.sleep(0.001)
        return False

    def remove(self) -> None:
        self.kill_all()
        for path in self.dirs.values():
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:  # EBUSY while the last process is still being torn down
                    if exc.errno != errno.EBUSY:
                        break
                    time.sleep(0.002)


def _remove_stale(support: CgroupSupport) -> None:
    """Removes groups left by verifier processes that no longer exist (a crash skips their clean-up)."""
    for _, base in support.bases:
        with contextlib.suppress(OSError):
            for entry in os.scandir(base):
                parts = entry.name.split("-")
                if entry.name.startswith(PREFIX + "-") and len(parts) > 2 and parts[2].isdigit():
                    if not Path(f"/proc/{parts[2]}").exists():
                        with contextlib.suppress(OSError):
                            os.rmdir(entry.path)
