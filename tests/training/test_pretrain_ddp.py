"""Two CPU processes under torchrun (gloo + DDP) take the same steps as one process on the whole batch."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.training.pretrain_helpers import make_data_dir
from training.config import load_pretrain_config, preset_path
from training.pretrain import RunOptions, pretrain


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    data_dir = make_data_dir(tmp_path / "data", tiny_model_dir)
    config_path = tmp_path / "short.toml"
    config_path.write_text(preset_path("smoke").read_text().replace("total_tokens = 3072", "total_tokens = 1024"))
    config = load_pretrain_config(config_path, data_dir=data_dir)
    single = pretrain(dataclasses.replace(config), RunOptions(tmp_path / "one", show_progress=False))

    mimo = str(Path(sys.executable).parent / "mimo")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", mimo]
    command += ["train", "pretrain", "--config", str(config_path), "--data", str(data_dir)]
    command += ["--out", str(tmp_path / "two"), "--no-progress", "--threads", "1"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]

    one = load_file(str(single.model_dir / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "model" / "model.safetensors"))
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=2e-4, rtol=1e-3, msg=name)
