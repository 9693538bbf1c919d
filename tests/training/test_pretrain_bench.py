"""`mimo bench train`: both loops run on the same model and batch and report comparable rates."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner


@pytest.mark.slow
def test_bench_train_reports_both_loops():
    from mimo.cli import app

    args = ["bench", "train", "--steps", "1", "--rounds", "1", "--batch-size", "2", "--seq-len", "32", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ours_tokens_per_s"] > 0 and report["hf_trainer_tokens_per_s"] > 0
    expected = report["ours_tokens_per_s"] / report["hf_trainer_tokens_per_s"]
    assert report["speedup"] == pytest.approx(expected, rel=0.01)


@pytest.mark.slow
def test_bench_train_fsdp_reports_both_strategies_on_two_processes():
    from mimo.cli import app

    args = ["bench", "train", "--fsdp", "--steps", "1", "--rounds", "1", "--batch-size", "2", "--seq-len", "32",
            "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["processes"] == 2 and report["ddp_tokens_per_s"] > 0 and report["fsdp_tokens_per_s"] > 0
    assert report["fsdp_vs_ddp"] == pytest.approx(report["fsdp_tokens_per_s"] / report["ddp_tokens_per_s"], rel=0.01)
    # each FSDP2 process holds about half of the weights, gradients and AdamW state
    assert report["fsdp_state_mb_per_process"] < 0.6 * report["ddp_state_mb_per_process"]


def test_bench_train_fsdp_refuses_a_batch_the_processes_do_not_divide():
    from mimo.cli import app

    result = CliRunner().invoke(app, ["bench", "train", "--fsdp", "--processes", "3", "--batch-size", "8"])
    assert result.exit_code == 2 and "--processes must be at least 2 and divide --batch-size" in result.stderr
