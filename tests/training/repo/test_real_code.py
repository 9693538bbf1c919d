"""On real code available offline (installed distributions' sources): retraining nano on a package it never
saw, and mining RL tasks from a real pytest suite. Slow; the figures themselves are in docs/benchmarks.md."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow


def test_nano_retrains_on_an_installed_package_it_never_saw(tmp_path):
    """unidiff (MIT) is not among nano's training sources (docs/model-card.md)."""
    from mimo.cli import app

    out = tmp_path / "unidiff"
    args = ["train", "repo", "installed:unidiff", "--out", str(out), "--held-out", "0.25", "--validation", "0.2",
            "--max-minutes", "3", "--eval-points", "20", "--threads", "1", "--json", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report["data"]["licenses"].values()) == ["MIT"]
    assert report["before"]["cursor_points"] == report["after"]["cursor_points"] == 20
    assert report["seconds"] < 3 * 60 + 60  # the budget holds (the final evaluation may run a little over)
    assert report["training"]["steps"] >= 1 and (out / "model" / "model.safetensors").is_file()
    assert report["after"]["loss"] <= report["before"]["loss"]  # the base's state is the floor of early stopping


def test_mining_a_real_pytest_suite_keeps_only_tasks_that_pass_with_their_original_body(tmp_path):
    """dill (BSD-3-Clause) ships its pytest suite; every kept task is re-verified with its original body."""
    from training.repo.mining.mine import MineOptions, mine
    from training.repo.mining.tasks import load_repo_tasks, verify_completion

    repo = Path(importlib.util.find_spec("dill").origin).parent
    out = tmp_path / "dill.jsonl"
    report = mine(MineOptions(repo=repo, out=out, max_candidates=12, show_progress=False))
    assert report["suite"]["passed"] > 50 and report["checked"] == 12
    tasks = load_repo_tasks(out)
    assert len(tasks) == report["kept"] >= 3
    for task in tasks[:3]:
        assert verify_completion(task, task.reference_completion).passed, task.id
        assert not verify_completion(task, "\n" + task.indent + "return None\n").passed, task.id
