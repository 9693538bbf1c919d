"""Cgroup detection and limits: v2 and v1 trees as the kernel lays them out (files in a temporary dir), and the
machine's own cgroups where the tests run as root."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from training.verify.cgroups import Cgroup, CgroupSupport, _detect_v1, _detect_v2, detect
from training.verify.sandbox import Rlimits, spawn


def _tree(root, files: dict[str, str]):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_v2_is_used_where_memory_and_pids_are_delegated(tmp_path):
    _tree(tmp_path, {"service/cgroup.subtree_control": "cpu memory pids\n"})
    support = _detect_v2([(str(tmp_path), "cgroup2", set())], {"": "/service"})
    assert support.version == "v2" and support.controllers == ("memory", "pids", "cpu")
    group = Cgroup.create(support, "probe", memory_mb=256, processes=20, cpus=0.5)
    path = tmp_path / "service" / f"mimo-verify-{os.getpid()}-probe"
    assert (path / "memory.max").read_text() == str(256 << 20)
    assert (path / "memory.swap.max").read_text() == "0"
    assert (path / "pids.max").read_text() == "20"
    assert (path / "cpu.max").read_text() == "50000 100000"
    assert group.procs_files == [str(path / "cgroup.procs")]


def test_v2_without_delegation_says_why(tmp_path):
    _tree(tmp_path, {"cgroup.subtree_control": "cpu\n"})
    support = _detect_v2([(str(tmp_path), "cgroup2", set())], {"": "/"})
    assert support.version == "none" and "does not delegate memory, pids" in support.reason


def test_v1_needs_writable_memory_and_pids_hierarchies(tmp_path):
    mounts = [(str(tmp_path / c), "cgroup", {"rw", c}) for c in ("memory", "pids", "cpu")]
    for controller in ("memory", "pids", "cpu"):
        (tmp_path / controller / "job").mkdir(parents=True)
    support = _detect_v1(mounts, {"memory": "/job", "pids": "/job", "cpu": "/job"})
    assert support.version == "v1" and support.controllers == ("memory", "pids", "cpu")
    group = Cgroup.create(support, "probe", memory_mb=128, processes=10, cpus=1.0)
    assert (group.dirs["memory"] / "memory.limit_in_bytes").read_text() == str(128 << 20)
    assert (group.dirs["pids"] / "pids.max").read_text() == "10"
    assert (group.dirs["cpu"] / "cpu.cfs_quota_us").read_text() == "100000"
    only_memory = _detect_v1(mounts[:1], {"memory": "/job"})
    assert only_memory.version == "none" and "pids" in only_memory.reason


@pytest.fixture
def real_support() -> CgroupSupport:
    support = detect()
    if os.geteuid() != 0 or not support.available:
        pytest.skip(f"no writable cgroups here: {support.reason or 'not root'}")
    return support


def test_a_process_joins_its_group_before_it_starts_anything(real_support):
    group = Cgroup.create(real_support, "join-test", memory_mb=256, processes=8, cpus=1.0)
    try:
        child = spawn(["/bin/sleep", "30"], uid=None, cgroup=group, rlimits=Rlimits(), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not group.pids() and time.monotonic() < deadline:  # the wrapper shell is still starting
            time.sleep(0.01)
        assert group.pids() == [child.pid]
        group.kill_all()
        assert child.wait(5) == -9 and group.pids() == []
    finally:
        group.remove()
    assert not any(path.exists() for path in group.dirs.values())
