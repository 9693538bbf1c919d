"""`mimo eval tasks` (pass@k through the sandbox), calibration end to end, and the verl reward entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mimo.cli import app
from training.rl.evaluate import check_completions, cut_at_stop, pass_at_k
from training.rl.reward_adapters import compute_score, verl_records
from training.tasks import load_tasks
from training.verify import VerifierPool


def test_pass_at_k_is_human_evals_estimator():
    results = {"a": [True, False, False, False], "b": [False] * 4, "c": [True] * 4}
    estimates = pass_at_k(results, 4)
    assert estimates[1] == pytest.approx(np.mean([0.25, 0.0, 1.0]))
    assert list(estimates) == [1]
    ten = pass_at_k({"a": [True] + [False] * 9}, 10)
    assert ten[10] == 1.0 and ten[1] == pytest.approx(0.1)


def test_cut_at_stop():
    assert cut_at_stop("\n    return 1\ndef g():\n", ("\ndef ",)) == "\n    return 1"
    assert cut_at_stop("print(1)\n", ()) == "print(1)\n"


def test_completions_are_checked_in_the_sandbox(verifier_config):
    tasks = [t for t in load_tasks() if t.id in ("sum_of_squares", "add_two")]
    completions = {
        "sum_of_squares": [tasks[0].reference_completion, "\n    return n * n\n", "\n    return (\n"],
        "add_two": [tasks[1].reference_completion, "\nprint(3)\n", "\nimport os\nos._exit(0)\n"],
    }
    with VerifierPool(verifier_config) as pool:
        report = check_completions(tasks, completions, pool)
    assert report.per_task == {"sum_of_squares": [True, False, False], "add_two": [True, False, False]}
    assert report.pass_at_k[1] == pytest.approx(1 / 3)
    assert report.per_source == {"unknown": pytest.approx(1 / 3)}


def test_the_verl_entry_point_scores_like_our_reward(verifier_config, monkeypatch):
    (task,) = [t for t in load_tasks() if t.id == "sum_of_squares"]
    (record,) = verl_records([task], scheme="soft")
    assert record["reward_model"]["style"] == "rule" and record["extra_info"]["task_id"] == "sum_of_squares"
    ground_truth = record["reward_model"]["ground_truth"]
    good = compute_score("mimo-code", task.reference_completion, ground_truth, record["extra_info"])
    assert good == {"score": 1.0, "solved": 1.0, "tests_passed": 5.0}
    # Right for n >= 0 only: soft credits the tests it passes, strict (no levels: one level) nothing.
    partial = "\n    return sum(k * k for k in range(1, n + 1)) if n > 0 else -1\n"
    assert compute_score("mimo-code", partial, ground_truth, {"reward_scheme": "soft"})["score"] == pytest.approx(0.6)
    assert compute_score("mimo-code", partial, ground_truth, {"reward_scheme": "strict"})["score"] == 0.0
    with pytest.raises(ValueError, match="reward_scheme 'lenient'"):
        compute_score("mimo-code", partial, ground_truth, {"reward_scheme": "lenient"})


@pytest.mark.slow
def test_eval_tasks_and_calibrate_end_to_end(tiny_model_dir, tmp_path, verifier_config):
    result = CliRunner().invoke(app, ["eval", "tasks", "--tasks", "project", "--model", str(tiny_model_dir),
                                      "--samples", "2", "--max-tokens", "16", "--limit", "4", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["tasks"] == 4 and report["samples"] == 2 and set(report["pass_at_k"]) == {"pass@1"}
    assert report["temperature"] == 0.6 and report["top_p"] == 0.95  # MiMo's evaluation settings by default
    assert 0 <= report["mtp_acceptance"] <= 1  # the tiny model drafts with its MTP layer

    out = tmp_path / "calibrated.jsonl"
    result = CliRunner().invoke(app, ["train", "calibrate", "--tasks", "project", "--model", str(tiny_model_dir),
                                      "--rollouts", "2", "--max-tokens", "8", "--out", str(out), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    calibrated = load_tasks(out)
    assert len(calibrated) == 17 and all(len(t.test_levels) == len(t.tests) for t in calibrated)
    # A random model passes nothing: every test is at one level with pass rate 0.
    assert all(set(t.test_pass_rates) == {0.0} and set(t.test_levels) == {0} for t in calibrated)
    assert json.loads(result.stdout)["never_solved"] == 17
