"""run_sandboxed: one command in a fresh sandbox with read-only binds and limits (the repo tools build on it)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from training.verify import Limits, Mount, run_sandboxed
from training.verify.cgroups import detect

PYTHON = "/usr/bin/python3"


@pytest.fixture
def run(verifier_config, leftovers):  # verifier_config: skips where the sandbox cannot run
    def run_(code: str, **options):
        options.setdefault("uid_base", verifier_config.uid_base)
        result = run_sandboxed([PYTHON, "-I", "-S", "-c", code], **options)
        assert leftovers() == [], "the command left processes behind"
        return result

    return run_


@pytest.fixture
def shared_dir():
    """A host dir the sandbox's unprivileged uid can read (pytest's tmp_path lives under a 0700 dir)."""
    path = Path(tempfile.mkdtemp(prefix="mimo-verify-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_exit_code_output_and_a_read_only_bind(run, shared_dir):
    tmp_path = shared_dir
    (tmp_path / "data.txt").write_text("from the host")
    code = (
        "import os, sys\n"
        "print(open('/repo/data.txt').read(), os.getcwd())\n"
        "try:\n    open('/repo/new.txt', 'w')\nexcept OSError as exc:\n    print('denied', exc.errno)\n"
        "print('to stderr', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    result = run(code, mounts=[Mount(str(tmp_path), "/repo")], cwd="/repo")
    assert result.exit_code == 3 and not result.timed_out
    assert result.stdout.decode().splitlines() == ["from the host /repo", "denied 30"]  # EROFS
    assert result.stderr == b"to stderr\n"
    assert not (tmp_path / "new.txt").exists()


def test_the_environment_is_empty_unless_given(run, monkeypatch):
    monkeypatch.setenv("MIMO_TEST_SECRET", "hunter2")
    assert b"hunter2" not in run("import os; print(dict(os.environ))").stdout
    assert run("import os; print(os.environ['ONLY'])", env={"ONLY": "this"}).stdout == b"this\n"


def test_a_timeout_kills_everything_it_started(run):
    code = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\ntime.sleep(60)\n"
    result = run(code, timeout_s=0.5)
    assert result.timed_out and result.exit_code is None  # `run` asserts the forked sleeper is gone too


def test_the_work_dir_is_a_bounded_tmpfs(run):
    code = (
        "import os\n"
        "try:\n    open('/tmp/big', 'wb').write(b'x' * (8 << 20))\nexcept OSError as exc:\n    print(exc.errno)\n"
    )
    result = run(code, limits=Limits(tmpfs_mb=4))
    assert result.stdout == b"28\n"  # ENOSPC
    assert result.protections.work_tmpfs_mb == 4


def test_unshare_and_netlink_are_denied_by_seccomp(run):
    code = (
        "import ctypes, os, socket\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.unshare(0x10000000), ctypes.get_errno())\n"  # CLONE_NEWUSER
        "try:\n    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)\nexcept OSError as exc:\n    print(exc.errno)\n"
    )
    assert run(code).stdout.split() == [b"-1", b"1", b"97"]  # EPERM, EAFNOSUPPORT


@pytest.mark.skipif(not detect().available, reason="no writable cgroups here")
def test_memory_and_processes_are_bounded_for_the_whole_run(run):
    forks = (
        "import os, time\nn = 0\n"
        "try:\n    for _ in range(100):\n        if os.fork() == 0:\n            time.sleep(2)\n            os._exit(0)\n"
        "        n += 1\nexcept OSError:\n    pass\nprint(n)\n"
    )
    result = run(forks, limits=Limits(processes=10))
    assert 0 < int(result.stdout) < 10
    assert result.protections.process_limit == 10
    spread = (  # four processes of 100 MB each: every one is under any per-process limit, together they are not
        "import os, time\n"
        "for _ in range(4):\n    if os.fork() == 0:\n        b = bytearray(100 << 20)\n        time.sleep(2)\n"
        "        os._exit(0)\n"
        "print(sum(os.waitstatus_to_exitcode(os.wait()[1]) == -9 for _ in range(4)))\n"
    )
    result = run(spread, limits=Limits(memory_mb=250))
    assert int(result.stdout) >= 1  # the memory cgroup killed at least one
    assert result.protections.memory_limit_mb == 250


def test_unsafe_mode_runs_without_bwrap(verifier_config):
    from training.verify import SandboxConfig

    config = SandboxConfig(bwrap="/nonexistent/bwrap", unsafe_no_sandbox=True)
    result = run_sandboxed(
        [sys.executable, "-c", "import os; print(os.getcwd())"], config=config, uid_base=verifier_config.uid_base
    )
    assert result.exit_code == 0 and result.protections.sandbox == "none"
    assert result.stdout.decode().strip() != os.getcwd()
