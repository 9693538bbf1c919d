"""The README's training commands, run as written (in a scratch folder laid out like the repository): each step
builds on the ones before it, and `mimo train mixture training/configs/mixture-example.toml` checks a mixture of
the shard folders those steps wrote."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Tokenizer and data over the standard library and four distributions, then a smoke pretraining run: about a minute.
pytestmark = pytest.mark.slow


def readme_training_commands() -> list[str]:
    """The `mimo train ...` lines of the README's "Training and evaluation" block, comments dropped."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"### Training and evaluation\n```sh\n(.*?)```", readme, flags=re.DOTALL)
    assert block, "README.md has no 'Training and evaluation' sh block"
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line.startswith("mimo train ")]


def test_the_readme_names_the_steps_the_mixture_example_needs():
    commands = readme_training_commands()
    steps = [shlex.split(command)[2] for command in commands]
    assert steps[:4] == ["tokenizer", "data", "data", "mixture"]
    assert "training/configs/mixture-example.toml" in commands[3]


def test_the_readme_training_commands_run_in_order(tmp_path):
    (tmp_path / "training" / "configs").mkdir(parents=True)
    shutil.copy(REPO / "training" / "configs" / "mixture-example.toml", tmp_path / "training" / "configs")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    outputs = {}
    for command in readme_training_commands():
        arguments = shlex.split(command)[1:]
        done = subprocess.run(
            [sys.executable, "-m", "mimo.cli", *arguments], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        outputs[arguments[1]] = done.stdout
    stages = json.loads(outputs["mixture"])
    assert [stage["stage"] for stage in stages] == ["broad", "focus", "long"]
    for stage in stages:
        assert all(source["tokens"] > 0 for source in stage["sources"].values()), stage
    assert (tmp_path / "runs" / "smoke" / "model" / "config.json").is_file()
