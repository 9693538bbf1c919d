"""`mimo train repo` end to end on git repositories built here, with a tiny random MiMo as the base: the report,
the exported model loading in other commands, LoRA exports, resume after SIGKILL, errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from engine.model_card import CARD_FILE, trained_languages
from training.repo.trainer import TrainOptions, learning_rate

FAST = ["--eval-points", "3", "--threads", "1"]


def _train(repo, base, out, *extra):
    from mimo.cli import app

    args = ["train", "repo", str(repo), "--base", str(base), "--out", str(out), "--json", *FAST, *extra]
    return CliRunner().invoke(app, args)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    options = TrainOptions(lr=1e-3, min_lr_ratio=0.1, warmup_fraction=0.1)
    assert learning_rate(0.0, options) < 2e-5
    assert learning_rate(0.1, options) == pytest.approx(1e-3)
    assert learning_rate(0.55, options) == pytest.approx(5.5e-4)
    assert learning_rate(1.0, options) == pytest.approx(1e-4)


@pytest.fixture
def carded_base(tiny_model_dir, tmp_path):
    """The tiny model with a model card that says it was trained on Rust."""
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    (base / CARD_FILE).write_text(json.dumps({"model": "tiny-rust", "languages": ["rust"]}), encoding="utf-8")
    return base


@pytest.mark.slow
def test_a_full_run_reports_before_and_after_and_its_model_loads_everywhere(code_repo, carded_base, tmp_path):
    out = tmp_path / "run"
    result = _train(code_repo, carded_base, out, "--full", "--max-epochs", "3")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for part in ("before", "after"):
        assert {"loss", "exact_match", "edit_similarity", "mtp_acceptance"} <= report[part].keys()
    assert report["after"]["loss"] < report["before"]["loss"]  # a random model learns the repository at once
    assert report["training"]["method"] == "full" and report["training"]["stopped"] in ("plan-done", "early-stop")
    assert report["data"]["rejected"]["vendored"] == 1
    assert json.loads((out / "report.json").read_text())["after"] == report["after"]
    assert "validation after pass" in result.stderr and "rejected:" in result.stderr
    from mimo.cli import app

    heldout = out / "data" / "heldout.jsonl"
    evaluated = CliRunner().invoke(app, ["eval", "completion", "--model", str(out / "model"), "--data", str(heldout),
                                         "--points", "3", "--json"])  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["loss"] == pytest.approx(report["after"]["loss"], rel=1e-6)
    from engine.registry import open_engine

    engine = open_engine(str(out / "model"), backend="native")  # what serve, lsp, complete and review open
    assert engine is not None
    # The card: the base model's languages and the repository's, so editors complete in both.
    assert engine.info().languages == ("python", "rust")
    card = json.loads((out / "model" / CARD_FILE).read_text(encoding="utf-8"))
    assert (card["model"], card["base"], card["repository_languages"]) == ("run", "tiny-rust", ["python"])
    assert report["data"]["languages"] == {"python": {"files": report["data"]["train_files"]}}


@pytest.mark.slow
def test_lora_exports_an_adapter_and_a_merged_model(code_repo, tiny_model_dir, tmp_path):
    out = tmp_path / "lora"
    result = _train(
        code_repo, tiny_model_dir, out, "--lora", "--lora-rank", "4", "--max-epochs", "2", "--mtp", "freeze"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["training"]["method"] == "lora" and report["adapter"] in (str(out / "adapter"), "lora/adapter")
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    merged, base = load_file(out / "model" / "model.safetensors"), load_file(tiny_model_dir / "model.safetensors")
    assert all(torch.equal(merged[k].float(), base[k].float().to(merged[k].dtype).float()) for k in base
               if ".mtp_layers." in k)  # fmt: skip
    assert any(not torch.equal(merged[k].float(), base[k].to(merged[k].dtype).float()) for k in base if "q_proj" in k)
    # A base without a card claims no languages (any): the trained model's card says so too, and what it added.
    card = json.loads((out / "model" / CARD_FILE).read_text(encoding="utf-8"))
    assert "languages" not in card and card["repository_languages"] == ["python"]
    assert trained_languages(out / "model") is None


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_model(code_repo, tiny_model_dir, tmp_path):
    args = ["--base", str(tiny_model_dir), "--eval-points", "3", "--threads", "1", "--max-epochs", "40",
            "--patience", "100", "--max-minutes", "60", "--no-progress"]  # fmt: skip
    command = [sys.executable, "-m", "mimo.cli", "train", "repo", str(code_repo)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([*command, "--out", str(tmp_path / "whole"), *args], check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    process = subprocess.Popen([*command, "--out", str(killed), *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    while not (killed / "checkpoint.pt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "report.json").exists(), "the run ended before it could be killed"
    again = subprocess.run([*command, "--out", str(killed), *args], env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr  # a started run is never overwritten
    subprocess.run([*command, "--out", str(killed), *args, "--resume"], check=True, env=env, capture_output=True)
    whole, resumed = (
        load_file(tmp_path / "whole" / "model" / "model.safetensors"),
        load_file(killed / "model" / "model.safetensors"),
    )
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    a, b = (json.loads((d / "report.json").read_text())["training"] for d in (tmp_path / "whole", killed))
    assert a["steps"] == b["steps"] and a["evals"][-1]["loss"] == b["evals"][-1]["loss"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lora", "--full"], "at most one of --lora and --full"),
        (["--held-out", "1.5"], "--held-out"),
        (["--max-minutes", "0"], "--max-minutes"),
        (["--mtp", "maybe"], "--mtp"),
        (["--resume"], "no checkpoint.pt"),
        (["--eval-points", "0"], "--eval-points"),
    ],
)
def test_bad_options_are_one_line_errors(code_repo, tiny_model_dir, tmp_path, extra, message):
    result = _train(code_repo, tiny_model_dir, tmp_path / "out", *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_missing_source_or_base_is_a_one_line_error(tmp_path, tiny_model_dir, code_repo):
    result = _train(tmp_path / "nowhere", tiny_model_dir, tmp_path / "out")
    assert result.exit_code == 2 and "does not exist" in result.output
    result = _train(code_repo, tmp_path / "no-model", tmp_path / "out")
    assert result.exit_code == 2 and "no model" in result.output
