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
