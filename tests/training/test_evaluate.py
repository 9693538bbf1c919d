"""Completion-eval metrics on hand-made cases with known answers, cursor sampling, and the command end to end."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from training.completion_model import mtp_agreement
from training.errors import UserError
from training.evaluate import (
    EvalOptions,
    edit_similarity,
    exact_match,
    read_heldout,
    sample_cursor_points,
)

SOURCE = "def area(width, height):\n    product = width * height\n    return product\n\n\nprint(area(2, 3))\n"


def test_exact_match_ignores_surrounding_whitespace_only():
    assert exact_match("return product  ", "return product")
    assert exact_match("", "   ")
    assert not exact_match("return products", "return product")
    assert not exact_match("return  product", "return product")


def test_edit_similarity_known_values():
    assert edit_similarity("abcd", "abcf") == pytest.approx(0.75)  # 2 * 3 matching / 8 characters
    assert edit_similarity("x + 1", "x + 1") == 1.0
    assert edit_similarity("abc", "xyz") == 0.0
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("", "return") == 0.0


def test_mtp_agreement_compares_the_draft_with_the_next_main_guess():
    main = torch.tensor([5, 6, 7, 8])  # main[t] guesses token t+1
    mtp = torch.tensor([6, 9, 8, 1])  # mtp[t] guesses token t+2, like main[t+1]; mtp[3] has no partner
    assert mtp_agreement(main, mtp) == (2, 3)
    assert mtp_agreement(main, torch.tensor([6, 7, 8, 0])) == (3, 3)


def test_cursor_points_split_the_file_at_the_cursor_line():
    points = sample_cursor_points([("area.py", SOURCE)], count=50, seed=1)
    assert len(points) == 3  # the lines after the first with >= 4 visible characters
    for point in points:
        assert point.target.strip()
        line_end = SOURCE.index("\n", len(point.prefix))
        assert point.prefix + point.target == SOURCE[:line_end]
        assert point.suffix == SOURCE[line_end + 1 :]


def test_cursor_sampling_is_deterministic_per_seed():
    files = [("a.py", SOURCE), ("b.py", SOURCE.replace("area", "size"))]
    first = sample_cursor_points(files, count=4, seed=7)
    assert first == sample_cursor_points(list(reversed(files)), count=4, seed=7)
    assert first != sample_cursor_points(files, count=4, seed=8)


def test_heldout_reads_folders_and_jsonl(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "area.py").write_text(SOURCE)
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01")
    (tmp_path / "more.jsonl").write_text(json.dumps({"path": "x/y.py", "text": "a = 1\n"}) + "\n")
    assert sorted(read_heldout(tmp_path)) == [("pkg/area.py", SOURCE), ("x/y.py", "a = 1\n")]
    with pytest.raises(UserError, match="does not exist"):
        read_heldout(tmp_path / "missing")


def test_mtp_acceptance_uses_the_same_mtp_path_as_training(tiny_model_dir):
    from training.completion_model import CompletionModel

    lm = CompletionModel.load(str(tiny_model_dir))
    ids = lm.tokenizer(SOURCE * 3)["input_ids"]
    main, mtp = lm.greedy_pair(ids)
    with torch.inference_mode():
        output = lm.model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids]))
    assert torch.equal(main, output.logits[0].argmax(-1))
    assert torch.equal(mtp[:-1], output.mtp_logits[0][0, :-1].argmax(-1))
    accepted, positions = lm.mtp_acceptance([SOURCE * 3], EvalOptions(acceptance_window=16))
    windows = [ids[start : start + 16] for start in range(0, len(ids), 16)]
    assert positions == sum(len(window) - 1 for window in windows if len(window) >= 3)
    assert 0 <= accepted <= positions


def test_eval_command_prints_the_figures_as_json(tiny_model_dir, tmp_path):
    from mimo.cli import app

    (tmp_path / "area.py").write_text(SOURCE)
    args = ["eval", "completion", "--model", str(tiny_model_dir), "--data", str(tmp_path), "--points", "3", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cursor_points"] == 3 and report["mtp_positions"] > 0
    for key in ("exact_match", "edit_similarity", "mtp_acceptance"):
        assert 0.0 <= report[key] <= 1.0


def test_eval_command_rejects_missing_inputs(tiny_model_dir, tmp_path):
    from mimo.cli import app

    result = CliRunner().invoke(app, ["eval", "completion", "--model", str(tmp_path / "nope"), "--data", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["eval", "completion", "--model", str(tiny_model_dir), "--data", str(tmp_path)])
    assert result.exit_code == 2 and "no held-out text files" in result.output
