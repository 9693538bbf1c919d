"""End to end with a real local model through the native engine: the shipped nano model when its checkpoint is
in engine/assets/nano, else the tiny random test checkpoint. Neither writes useful reviews, so this proves the
plumbing: the prompt fits the model's context, the answer is parsed or retried and noted, only changed lines
survive, the checks still gate the exit code, and nano says that reviews need a larger model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.registry import NANO_DIR
from lsp_server.review.runner import SMALL_MODEL_NOTE
from mimo.cli import app


@pytest.fixture
def local_model(request) -> str:
    if (NANO_DIR / "config.json").is_file():
        return "nano"
    return str(request.getfixturevalue("tiny_model_dir"))


@pytest.mark.slow
def test_review_with_the_local_model_end_to_end(repo, local_model, tmp_path):
    repo.write("shop.py", "def total(prices):\n    return sum(prices)\n")
    repo.commit()
    repo.write("shop.py", "def total(prices):\n    return sum(prices) * 1.2\n\n\ndef tax(:\n    pass\n")
    args = ["review", str(repo.root), "--model", local_model, "--format", "json",
            "--cache-dir", str(tmp_path / "cache"), "--max-output-tokens", "24"]  # fmt: skip

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 1, result.output  # the introduced syntax error is an error
    report = json.loads(result.stdout)
    name = Path(local_model).name
    assert report["model"] == name and f"reviewed by {name}" in result.stderr
    assert (SMALL_MODEL_NOTE in report["notes"]) == (name == "nano")
    assert report["summary"]["units"] >= 1 and report["summary"]["chunks"] >= 1
    assert "mimo/syntax-error" in {f["rule_id"] for f in report["findings"]}
    for finding in report["findings"]:  # whatever the model said, only changed lines survive
        assert 2 <= finding["start_line"] <= finding["end_line"] <= 6
