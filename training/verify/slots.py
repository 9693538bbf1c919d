"""Sandbox slots: one unused uid per concurrent run, so limits and clean-up are per run.

Each slot has two uids: one for the candidate's sandbox and one (``uid + MAX_SLOTS``) for the trusted judge that
runs the tests, so the candidate cannot signal or read the judge even where the sandbox's namespaces would allow it.

RLIMIT_NPROC counts processes per real uid, system-wide, and the kernel ignores it for root. Running each sandbox
as its own unprivileged uid makes the fork-bomb limit hold, keeps one run's strays from starving the next, and
gives an exact clean-up: after a run, every process with the slot's uid is a leftover. A slot is held with an
exclusive ``flock`` on a file named after its uid, so concurrent verifier processes never share a uid.

Without root there is no uid to switch to: the slot then uses the caller's own uid, and clean-up relies on the
PID namespace alone (killing "every process of my uid" would kill the caller).
"""

from __future__ import annotations

import fcntl
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_UID_BASE = 61_000
MAX_SLOTS = 256


@dataclass(frozen=True)
class Slot:
    uid: int  # the candidate's sandbox runs as this uid
    gid: int
    dedicated: bool  # True when the uid belongs to this slot alone (we are root), so a sweep by uid is safe
    lock_fd: int = -1
    judge_uid: int = -1  # the trusted side (tests) runs as this other uid; -1 without root

    @property
    def name(self) -> str:
        return str(self.uid)


def locks_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "mimo-verify-slots"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def acquire_slot(uid_base: int = DEFAULT_UID_BASE) -> Slot:
    """Takes the first free uid at or above ``uid_base``; raises RuntimeError when all are taken."""
    if os.geteuid() != 0:
        return Slot(uid=os.getuid(), gid=os.getgid(), dedicated=False)
    directory = locks_dir()
    for uid in range(uid_base, uid_base + MAX_SLOTS):
        fd = os.open(directory / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        slot = Slot(uid=uid, gid=uid, dedicated=True, lock_fd=fd, judge_uid=uid + MAX_SLOTS)
        sweep(slot)  # a crashed verifier may have left processes under these uids
        sweep(slot, judge=True)
        return slot
    raise RuntimeError(f"all {MAX_SLOTS} sandbox uids from {uid_base} are in use")


def release_slot(slot: Slot) -> None:
    if slot.lock_fd >= 0:
        os.close(slot.lock_fd)  # closing drops the flock


def processes_of(uid: int) -> list[int]:
    """Live pids owned by ``uid`` (/proc/<pid> belongs to the process's effective uid); zombies are left out."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid and not _is_zombie(entry.name):
                    pids.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return pids


def _is_zombie(pid: str) -> bool:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        # The state follows the parenthesised command name, which may itself contain spaces or parentheses.
        return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"


def sweep(slot: Slot, attempts: int = 50, judge: bool = False) -> int:
    """SIGKILLs every process left under the slot's uid (or its judge's) until none remain; returns how many."""
    if not slot.dedicated:
        return 0
    uid = slot.judge_uid if judge else slot.uid
    killed = 0
    for _ in range(attempts):
        pids = processes_of(uid)
        if not pids:
            return killed
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.001)  # usually a namespace still being torn down after bwrap exited
    raise RuntimeError(f"processes of sandbox uid {uid} survive SIGKILL: {processes_of(uid)}")
