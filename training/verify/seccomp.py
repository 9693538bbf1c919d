"""The seccomp filter every sandbox runs under: a BPF program built with libseccomp, loaded by bwrap (``--seccomp FD``).

The filter allows everything a Python program needs and denies the kernel interfaces that sandbox escapes and
cross-sandbox tricks go through (each with EPERM, so code that probes them gets an ordinary OSError):

- new namespaces and mounts: unshare, setns, mount and the new mount API, pivot_root, chroot, and ``clone`` with
  any CLONE_NEW* flag. ``clone3`` passes its flags in memory, where a filter cannot look, so it gets ENOSYS and
  glibc falls back to ``clone``;
- reading or writing other processes: ptrace, process_vm_readv/writev, and changing another process's limits,
  priority or CPU affinity (prlimit64, setpriority, sched_set*, ioprio_set with a pid other than 0);
- big kernel attack surfaces: bpf, io_uring, perf_event_open, userfaultfd, keyctl/add_key/request_key,
  open_by_handle_at, fanotify, module loading, kexec;
- state that outlives a process inside a reused sandbox: System V shared memory, semaphores and message queues,
  POSIX message queues;
- sockets other than AF_UNIX, AF_INET and AF_INET6 (no netlink, no packet sockets): EAFNOSUPPORT.

Syscalls of other ABIs (i386 ``int 0x80``, x32) kill the process: libseccomp's default for a foreign architecture.
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile

DENIED = (
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "bpf",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "shmget",
    "semget",
    "msgget",
    "mq_open",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
)
# Calls whose first argument names another process: allowed on oneself (0), denied for any other pid.
DENIED_ON_OTHERS = ("prlimit64", "setpriority", "sched_setaffinity", "sched_setscheduler", "sched_setparam")
CLONE_NEW_FLAGS = (0x00000080, 0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
ALLOWED_SOCKET_FAMILIES = (1, 2, 10)  # AF_UNIX, AF_INET, AF_INET6
MAX_FAMILY = 64


class SeccompUnavailable(RuntimeError):
    """libseccomp (or pyseccomp) is missing; the message says what to install."""


@functools.lru_cache(maxsize=1)
def filter_program() -> bytes:
    """The BPF program (built once per process; about a millisecond)."""
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError) as exc:  # pyseccomp raises RuntimeError when libseccomp is missing
        raise SeccompUnavailable(
            f"no seccomp filter: {exc} (install libseccomp2: `apt-get install libseccomp2`; and pyseccomp)"
        ) from None
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED:
        _deny(seccomp, rules, errno.EPERM, name)
    for name in DENIED_ON_OTHERS:
        _deny(seccomp, rules, errno.EPERM, name, seccomp.Arg(0, seccomp.NE, 0))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for flag in CLONE_NEW_FLAGS:
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    for family in range(MAX_FAMILY):
        if family not in ALLOWED_SOCKET_FAMILIES:
            for call in ("socket", "socketpair"):
                rules.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), call, seccomp.Arg(0, seccomp.EQ, family))
    rules.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.GE, MAX_FAMILY))
    with tempfile.TemporaryFile() as handle:
        rules.export_bpf(handle)
        handle.seek(0)
        return handle.read()


def _deny(seccomp, rules, error: int, name: str, *args) -> None:
    try:
        rules.add_rule(seccomp.ERRNO(error), name, *args)
    except (OSError, ValueError, RuntimeError):
        pass  # a syscall this architecture does not have


def filter_fd() -> int:
    """A fresh readable fd holding the program, for ``bwrap --seccomp FD`` (bwrap reads it once)."""
    program = filter_program()
    fd = os.memfd_create("mimo-verify-seccomp", 0)  # no CLOEXEC: bwrap inherits it
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
