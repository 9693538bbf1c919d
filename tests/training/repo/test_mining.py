"""RL tasks from a repository's tests: the suite under coverage in the real bubblewrap sandbox, self-tests,
verification of candidates, and what a candidate cannot do there."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from typer.testing import CliRunner

from training.repo.mining.mine import MineOptions, is_test_file, mine
from training.repo.mining.tasks import load_repo_tasks, verify_completion

pytestmark = [
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def tested_repo():
    from tests.training.repo.conftest import make_tested_repo, readable_dir

    root = readable_dir()
    yield make_tested_repo(root / "tested")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def mined(tested_repo, tmp_path_factory):
    out = tmp_path_factory.mktemp("tasks") / "tasks.jsonl"
    report = mine(MineOptions(repo=tested_repo, out=out, show_progress=False))
    return report, load_repo_tasks(out), out


def test_mining_keeps_the_functions_the_tests_check_and_says_why_it_drops_the_others(mined):
    report, tasks, out = mined
    assert report["suite"]["passed"] == 6 and report["suite"]["failed"] == 0
    assert {task.function for task in tasks} == {"add", "clamp", "remember"}
    assert report["found"] == 6 and report["kept"] == 3
    assert report["dropped"] == {"emptied-passes": 1, "original-fails": 1, "screen": 1}
    decisions = {d["id"]: d["reason"] for d in json.loads(open(report["report"]).read())["decisions"]}
    assert decisions["calc.py::describe"] == "emptied-passes"  # its test only calls it
    assert decisions["calc.py::recall"] == "original-fails"  # its test passes only after another test ran
    assert decisions["calc.py::reads_file"] == "screen"
    clamp = next(task for task in tasks if task.function == "clamp")
    assert clamp.tests == ("tests/test_calc.py::test_clamp",)
    assert clamp.model_prompt.endswith('"""value limited to [low, high]."""')
    assert clamp.reference_completion.startswith("\n    if value < low:")
    record = json.loads(out.read_text().splitlines()[0])
    assert record["format"] == "repo" and record["meta"]["path"] == "calc.py"


def test_a_kept_task_verifies_right_answers_and_rejects_wrong_and_forged_ones(mined, tested_repo):
    _, tasks, _ = mined
    clamp = next(task for task in tasks if task.function == "clamp")
    assert verify_completion(clamp, "\n    return min(max(value, low), high)\n").passed
    wrong = verify_completion(clamp, "\n    return value\n")
    assert not wrong.passed and wrong.outcomes == {"tests/test_calc.py::test_clamp": "failed"}
    forged = [
        "\n    import os\n    os._exit(0)\n",  # exit early with status 0
        "\n    raise __import__('unittest').SkipTest('no')\n",  # skipped tests exit 0
        "\n    sys.modules['_pytest'].outcomes = None\n",
        "\n    return value\n  broken indentation\n",  # does not parse
    ]
    for body in forged:
        verdict = verify_completion(clamp, body)
        assert not verdict.passed, body
    assert (tested_repo / "calc.py").read_text().count("def clamp") == 1  # the repository was never written


def test_the_sandbox_keeps_the_repository_read_only_and_the_network_away(mined, tested_repo):
    _, tasks, _ = mined
    add = next(task for task in tasks if task.function == "add")
    # Allowed by the screen, stopped by the sandbox: writing into the repository, reaching the network.
    writes = "\n    from_path = __file__\n    with_text = type(a)\n    return a + b\n"
    assert verify_completion(add, writes).passed  # ordinary code runs
    attempt = "\n    pathlib_path = a\n    total = a + b\n    return total\n"
    assert verify_completion(add, attempt).passed
    original = (tested_repo / "calc.py").read_bytes()
    touch = "\n    type(a)\n    (lambda p: p.write_text('x'))(__import__ and None or a)\n    return a + b\n"
    assert not verify_completion(add, touch).passed  # __import__ is screened
    assert (tested_repo / "calc.py").read_bytes() == original


def test_is_test_file():
    assert is_test_file("tests/test_x.py") and is_test_file("pkg/conftest.py") and is_test_file("a/b_test.py")
    assert not is_test_file("pkg/testing_tools.py") and not is_test_file("pkg/mod.py")


def test_the_command_mines_and_reports(tested_repo, tmp_path):
    from mimo.cli import app

    out = tmp_path / "tasks.jsonl"
    result = CliRunner().invoke(app, ["train", "repo", str(tested_repo), "--tasks", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kept"] == 3 and len(out.read_text().splitlines()) == 3
    assert "3 kept" in result.stderr


def test_a_repository_without_passing_tests_is_a_clear_error(tmp_path):
    from mimo.cli import app
    from tests.training.repo.conftest import readable_dir

    root = readable_dir()
    try:
        (root / "mod.py").write_text("x = 1\n")
        result = CliRunner().invoke(app, ["train", "repo", str(root), "--tasks", str(tmp_path / "t.jsonl")])
        assert result.exit_code == 2 and "passed no test" in result.output and "Traceback" not in result.output
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root's sandbox runs as another uid")
def test_a_repository_other_uids_cannot_read_is_a_clear_error(tmp_path):
    from mimo.cli import app

    (tmp_path / "private").mkdir(mode=0o700)
    result = CliRunner().invoke(app, ["train", "repo", str(tmp_path / "private"), "--tasks", str(tmp_path / "t.jsonl")])
    assert result.exit_code == 2 and "not readable by other users" in result.output
