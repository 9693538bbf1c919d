"""End to end with a real local model through the native engine: the tiny random checkpoint (the shipped nano
model replaces it once it lands). Its answers are noise, so this proves the plumbing: the prompt fits the
model's context, the answer is parsed or retried and noted, the checks still gate the exit code."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mimo.cli import app


@pytest.mark.slow
def test_review_with_the_local_model_end_to_end(repo, tiny_model_dir, tmp_path):
    repo.write("shop.py", "def total(prices):\n    return sum(prices)\n")
    repo.commit()
    repo.write("shop.py", "def total(prices):\n    return sum(prices) * 1.2\n\n\ndef tax(:\n    pass\n")
    args = ["review", str(repo.root), "--model", str(tiny_model_dir), "--format", "json",
            "--cache-dir", str(tmp_path / "cache"), "--max-output-tokens", "24"]  # fmt: skip

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 1, result.output  # the introduced syntax error is an error
    report = json.loads(result.stdout)
    assert report["model"] == tiny_model_dir.name and f"reviewed by {tiny_model_dir.name}" in result.stderr
    assert report["summary"]["units"] >= 1 and report["summary"]["chunks"] >= 1
    assert "mimo/syntax-error" in {f["rule_id"] for f in report["findings"]}
    for finding in report["findings"]:  # whatever the model said, only changed lines survive
        assert finding["start_line"] in (2, 5, 6)
