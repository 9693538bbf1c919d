"""`mimo eval completion` reports the held-out loss (field `loss`) and refuses nonsense counts."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from training.evaluate import EvalOptions

SOURCE = "def area(width, height):\n    return width * height\n\n\nprint(area(3, 4))\n" * 4


def test_the_loss_is_the_mean_cross_entropy_of_the_windows(tiny_model_dir):
    from training.completion_model import CompletionModel

    lm = CompletionModel.load(str(tiny_model_dir))
    stats = lm.heldout_stats([SOURCE], EvalOptions(acceptance_window=16))
    ids = lm.tokenizer(SOURCE, add_special_tokens=False)["input_ids"]
    nll, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(ids), 16):
            window = ids[start : start + 16]
            if len(window) >= 3:
                logits = lm.model(input_ids=torch.tensor([window])).logits[0, :-1]
                nll += float(torch.nn.functional.cross_entropy(logits, torch.tensor(window[1:]), reduction="sum"))
                count += len(window) - 1
    assert stats.loss_tokens == count == stats.positions
    assert stats.loss == pytest.approx(nll / count, rel=1e-5)


def test_the_command_reports_the_loss(tiny_model_dir, tmp_path):
    from mimo.cli import app

    (tmp_path / "area.py").write_text(SOURCE)
    args = ["eval", "completion", "--model", str(tiny_model_dir), "--data", str(tmp_path), "--points", "2", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["loss"] > 0 and report["loss_tokens"] > 0


@pytest.mark.parametrize(
    ("flag", "value"), [("--points", "-5"), ("--points", "0"), ("--mtp-tokens", "-1"), ("--mtp-tokens", "0")]
)
def test_bad_counts_are_one_line_errors(tiny_model_dir, tmp_path, flag, value):
    from mimo.cli import app

    (tmp_path / "area.py").write_text(SOURCE)
    args = ["eval", "completion", "--model", str(tiny_model_dir), "--data", str(tmp_path), flag, value]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert f"{flag} must be a positive whole number, got {value}" in result.output and "Traceback" not in result.output
