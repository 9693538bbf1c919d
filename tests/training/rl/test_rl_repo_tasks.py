"""Repository-mined tasks ("format": "repo") in the task format: read by every consumer, checked by the
repository's own tests in the real sandbox, and accepted by `mimo train rl` and `mimo eval tasks`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mimo.cli import app
from training.errors import UserError
from training.tasks import read_tasks
from training.tasks.importers import load_any

RIGHT = "\n    if value < low:\n        return low\n    return min(value, high)\n"
WRONG = "\n    return value\n"
MIMO = str(Path(sys.executable).with_name("mimo"))


@pytest.fixture(scope="module")
def mined(tmp_path_factory):
    """A real git repository with a pytest suite, mined by `mimo train repo`'s miner into a task file."""
    from tests.training.repo.conftest import make_tested_repo, readable_dir
    from training.repo.mining.mine import MineOptions, mine

    root = readable_dir()
    repo = make_tested_repo(root / "tested")
    out = tmp_path_factory.mktemp("mined") / "mined.jsonl"
    mine(MineOptions(repo=repo, out=out, show_progress=False))
    yield out
    shutil.rmtree(root, ignore_errors=True)


def _record(**meta_changes) -> dict:
    meta = {"repo": "/srv/calc", "path": "calc.py", "function": "clamp", "lines": [3, 7], "suffix": "\n",
            "indent": "    ", "python": "/usr/bin/python3"}  # fmt: skip
    return {"id": "calc.py::clamp", "format": "repo", "prompt": "def clamp(value, low, high):\n",
            "tests": ["tests/test_calc.py::test_clamp"], "solution": "def clamp(value, low, high):" + RIGHT,
            "source": "repo/calc", "meta": {**meta, **meta_changes}}  # fmt: skip


def test_a_repo_record_is_a_task_every_reader_accepts(tmp_path):
    path = tmp_path / "mined.jsonl"
    path.write_text(json.dumps(_record()) + "\n")
    (task,) = read_tasks(path)
    assert load_any(path) == [task] and task.format == "repo" and task.effective_prompt_format == "code"
    assert task.model_prompt == "def clamp(value, low, high):" and task.reference_completion == RIGHT
    assert task.to_json() == _record()  # written back unchanged
    with pytest.raises(ValueError, match="runs its repository's tests"):
        _ = task.suite
    from training.rl.rewards import code_reward

    with pytest.raises(UserError, match=r"its repository /srv/calc is not there .*mimo train repo"):
        code_reward(RIGHT, task)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"meta": {"path": "calc.py"}}, "needs meta.repo"),
        ({"meta": dict(_record()["meta"], path="../../etc/passwd.py")}, "inside the repository"),
        ({"meta": dict(_record()["meta"], path="/etc/x.py")}, "inside the repository"),
        ({"meta": dict(_record()["meta"], repo="relative/root")}, "absolute path"),
        ({"meta": dict(_record()["meta"], lines=[7, 3])}, "meta.lines"),
        ({"tests": ["-p", "evil_plugin"]}, "not an option"),
        ({"tests": [{"input": "", "output": ""}]}, "pytest node id"),
        ({"setup": "import os"}, "setup is for functional tasks only"),
    ],
)
def test_hostile_or_broken_repo_records_are_refused_naming_the_line(tmp_path, change, message):
    path = tmp_path / "mined.jsonl"
    path.write_text(json.dumps(_record() | change) + "\n")
    for reader in (read_tasks, load_any):
        with pytest.raises(UserError, match=r"mined\.jsonl:1: .*" + message):
            reader(path)


def test_the_reward_and_the_eval_check_run_the_repository_tests(mined):
    from training.rl.evaluate import check_completions
    from training.rl.generators import VerifierScorer
    from training.rl.rewards import code_reward

    tasks = {task.id: task for task in read_tasks(mined)}
    clamp = tasks["calc.py::clamp"]
    assert clamp.format == "repo" and clamp.tests == ("tests/test_calc.py::test_clamp",)
    right = code_reward(RIGHT, clamp, "binary")
    assert right.score == 1.0 and right.solved and right.passed == (True,)
    assert code_reward(WRONG, clamp, "soft").score == 0.0
    screened = code_reward("\n    return __import__('os').getcwd()\n", clamp, "soft")  # refused before any run
    assert screened.score == 0.0 and not screened.solved and "__import__" in screened.detail
    scorer = VerifierScorer("strict", workers=2)
    assert [r.score for r in scorer.score(clamp, [RIGHT, WRONG, clamp.reference_completion])] == [1.0, 0.0, 1.0]
    seen = []
    report = check_completions([clamp], {clamp.id: [RIGHT, WRONG]}, pool=None, on_result=seen.append)
    assert report.per_task == {clamp.id: [True, False]} and report.pass_at_k == {1: 0.5} and len(seen) == 2
    assert report.test_pass_rate == 0.5
    from training.rl.sft import sft_examples  # mimo train sft: the original body is the target

    (example,) = sft_examples([clamp])
    assert example["completion"].startswith("\n    if value < low:") and example["prompt"] == clamp.model_prompt


def test_eval_cuts_a_body_where_the_file_goes_on():
    from training.rl.evaluate import cut_at_dedent

    method = "\n        return self.x\n\n    def other(self):\n        pass\n"
    assert cut_at_dedent(method, "        ") == "\n        return self.x\n\n"
    assert cut_at_dedent("\n    return 1\n", "    ") == "\n    return 1\n"


@pytest.mark.slow
def test_mimo_eval_tasks_and_train_rl_take_a_mined_file(mined, tiny_model_dir, tmp_path):
    result = CliRunner().invoke(app, ["eval", "tasks", "--tasks", str(mined), "--model", str(tiny_model_dir),
                                      "--samples", "2", "--max-tokens", "8", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["tasks"] == 3 and report["per_source"] == {"repo/tested": 0.0}  # a random model passes nothing
    rl = subprocess.run([MIMO, "train", "rl", "--preset", "smoke", "--model", str(tiny_model_dir), "--tasks",
                         str(mined), "--out", str(tmp_path / "rl"), "--no-progress", "--threads", "1", "--set",
                         "steps=1", "--set", "grpo.max_completion_length=8"],
                        capture_output=True, text=True, timeout=300)  # fmt: skip
    assert rl.returncode == 0, rl.stderr[-2000:]
    summary = json.loads((tmp_path / "rl/summary.json").read_text())
    assert summary["steps"] == 1 and (tmp_path / "rl/model/mimo-card.json").is_file()
