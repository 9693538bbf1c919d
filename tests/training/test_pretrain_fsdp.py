"""FSDP2 under torchrun on CPU (gloo): two processes follow one process's loss curve, write a sharded checkpoint
(torch.distributed.checkpoint), and a run killed with SIGKILL resumes on two processes or on one and ends where
an uninterrupted run does."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from tests.training.pretrain_helpers import make_data_dir
from training.checkpoint import sharded_folder
from training.config import load_pretrain_config, preset_path
from training.pretrain import RunOptions, pretrain

pytestmark = pytest.mark.slow
MIMO = str(Path(sys.executable).parent / "mimo")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model_dir):
    """Data, and the smoke preset with FSDP2: 18 steps (12 at 32 tokens, 6 at 64), a checkpoint every 2."""
    root = tmp_path_factory.mktemp("fsdp")
    data_dir = make_data_dir(root / "data", tiny_model_dir)
    config_path = root / "fsdp.toml"
    text = preset_path("smoke").read_text().replace("checkpoint_every = 4", "checkpoint_every = 2")
    config_path.write_text('strategy = "fsdp"\n' + text)
    return root, config_path, data_dir


def _command(processes: int, setup, out: Path, *extra: str) -> list[str]:
    _, config_path, data_dir = setup
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command = [MIMO, "train", "pretrain", "--config", str(config_path), "--data", str(data_dir), "--out", str(out)]
    return [*launcher, *command, "--no-progress", "--threads", "1", *extra]


def _history(out: Path) -> list[dict]:
    """The history in the run's last sharded checkpoint (checkpoint/, or checkpoint.old/ if killed mid-rename)."""
    return torch.load(sharded_folder(out) / "trainer.pt", weights_only=False)["state"]["history"]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "model" / "model.safetensors"))


def _assert_weights_close(actual: dict, expected: dict, **tolerance) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], msg=name, **tolerance)


@pytest.fixture(scope="module")
def one_process(setup):
    root, config_path, data_dir = setup
    config = load_pretrain_config(config_path, data_dir=data_dir)
    return pretrain(config, RunOptions(root / "one", show_progress=False)), root / "one"


@pytest.fixture(scope="module")
def two_processes(setup):
    out = setup[0] / "two"
    completed = subprocess.run(_command(2, setup, out), capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return out


def _killed_run(setup, out: Path) -> None:
    """Starts two processes and SIGKILLs all of them once the first sharded checkpoint is in place."""
    process = subprocess.Popen(_command(2, setup, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 240
    while not (out / "checkpoint" / "trainer.pt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    _kill_tree(process)
    assert not (out / "model").exists()


def _kill_tree(process: subprocess.Popen) -> None:
    """SIGKILLs torchrun and its workers. torchrun starts each worker in a session of its own, so killing its
    process group alone left the workers running: they went on writing checkpoint.partial/ under the resumed run."""
    workers = psutil.Process(process.pid).children(recursive=True)
    os.killpg(process.pid, signal.SIGKILL)
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()
    process.wait()
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"workers still running after SIGKILL: {alive}"


def test_two_processes_follow_the_loss_curve_of_one(one_process, two_processes):
    single, single_out = one_process
    curve = [record["loss"] for record in single.state.history]
    assert len(curve) == 18 and single.finished
    assert [record["loss"] for record in _history(two_processes)] == pytest.approx(curve, rel=1e-4)
    _assert_weights_close(_weights(two_processes), _weights(single_out), atol=2e-4, rtol=1e-3)


def test_each_process_writes_its_own_shards(two_processes):
    files = sorted(path.name for path in (two_processes / "checkpoint").iterdir())
    assert files == [".metadata", "__0_0.distcp", "__1_0.distcp", "trainer.pt"]
    assert not (two_processes / "checkpoint.pt").exists()


def test_resume_after_a_kill_on_two_processes_matches_an_uninterrupted_run(setup, two_processes):
    out = setup[0] / "killed-two"
    _killed_run(setup, out)
    resumed = subprocess.run(_command(2, setup, out, "--resume"), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = [record["loss"] for record in _history(two_processes)]
    assert [record["loss"] for record in _history(out)] == pytest.approx(expected, rel=1e-6)
    _assert_weights_close(_weights(out), _weights(two_processes), atol=1e-6, rtol=1e-5)


def test_resume_after_a_kill_on_one_process_matches_an_uninterrupted_run(setup, two_processes):
    """Sharded on two processes, resumed on one: DCP reads each tensor whole from the two shards."""
    root, config_path, data_dir = setup
    out = root / "killed-one"
    _killed_run(setup, out)
    config = load_pretrain_config(config_path, data_dir=data_dir)
    resumed = pretrain(dataclasses.replace(config), RunOptions(out, resume=True, show_progress=False))
    assert resumed.finished and resumed.state.step == 18
    expected = [record["loss"] for record in _history(two_processes)]
    assert [record["loss"] for record in resumed.state.history] == pytest.approx(expected, rel=1e-4)
    _assert_weights_close(_weights(out), _weights(two_processes), atol=2e-4, rtol=1e-3)
