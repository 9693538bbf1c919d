"""`mimo train rl/sft/make-tasks/decontaminate`, `mimo eval tasks`: usage errors, a kill and --resume, two
processes under Accelerate (gloo on CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mimo.cli import app
from training.errors import ConfigError
from training.rl.config import RLConfig, load_config

MIMO = str(Path(sys.executable).parent / "mimo")


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("reward.scheme=hard", "reward.scheme = 'hard': Input should be 'strict', 'soft' or 'binary'"),
        ("grpo.lr=1e-5", "unknown key 'grpo.lr'; allowed here: num_generations, problems_per_step"),
        ("colour=red", "unknown key 'colour'; allowed here: model, tasks"),
        ("grpo.num_generations=1", "grpo.num_generations = 1: Input should be greater than or equal to 2"),
        ("easy_pool.alpha=1.5", "easy_pool.alpha = 1.5"),
        ("rollout.backend=vllm-server", "needs rollout.vllm_server_base_url"),
        ("steps", "write KEY=VALUE"),
    ],
)
def test_config_errors_name_the_key_the_value_and_what_is_allowed(override, message):
    with pytest.raises(ConfigError) as error:
        load_config(RLConfig, None, [override])
    assert message in str(error.value)


def test_overrides_read_toml_values_and_presets_load():
    from training.rl.config import SFTConfig, preset_path

    config = load_config(RLConfig, preset_path("rl", "nano"), ["grpo.learning_rate=2e-5", "reward.scheme=soft",
                                                               "dynamic_sampling.enabled=false"])  # fmt: skip
    assert config.grpo.learning_rate == 2e-5 and config.reward.scheme == "soft"
    assert config.dynamic_sampling.enabled is False and config.tasks == "families-train"
    assert config.grpo.beta == 0.0 and config.grpo.loss_type == "dapo" and config.grpo.epsilon_high == 0.28
    for kind, model, names in (("rl", RLConfig, ("smoke", "nano", "gpu-vllm-colocate", "gpu-vllm-server")),
                               ("sft", SFTConfig, ("smoke", "nano"))):  # fmt: skip
        for name in names:
            load_config(model, preset_path(kind, name))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "rl", "--preset", "huge"],
            "no rl preset 'huge'; built-in presets: gpu-vllm-colocate, gpu-vllm-server, nano, smoke",
        ),
        (["train", "rl", "--set", "grpo.beta=-1"], "grpo.beta = -1"),
        (["train", "rl", "--tasks", "/nonexistent.jsonl"], "no task file /nonexistent.jsonl"),
        (["train", "sft", "--model", "/nonexistent"], "--model: "),
        (["train", "rl", "--resume", "--out", "/tmp/mimo-rl-no-run"], "--resume: no checkpoint"),
        (["eval", "tasks", "--tasks", "project"], "give exactly one of --model M or --engine URL"),
        (["eval", "tasks", "--tasks", "project", "--model", "nano", "--samples", "0"], "at least 1"),
        (["train", "calibrate", "--tasks", "project", "--out", "/tmp/x.jsonl"], "name at least one reference"),
        (
            ["train", "decontaminate", "--tasks", "project", "--against", "nope.jsonl", "--out", "/tmp/x.jsonl"],
            "no task file",
        ),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, message):
    result = _invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_make_tasks_writes_the_committed_sets(tmp_path):
    from training.tasks import BUILTIN_SETS

    assert _invoke("train", "make-tasks", "--out", str(tmp_path)).exit_code == 0
    for name in ("sft", "train", "heldout"):
        assert (tmp_path / f"{name}.jsonl").read_text() == BUILTIN_SETS[f"families-{name}"].read_text()
    ids = [json.loads(line)["id"] for name in ("sft", "train", "heldout")
           for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]  # fmt: skip
    assert len(ids) == len(set(ids))  # disjoint sets
    assert sum(1 for line in (tmp_path / "train.jsonl").read_text().splitlines()) >= 500


def test_decontaminate_against_humaneval(tmp_path):
    from training.tasks.importers import humaneval_tasks

    copy = humaneval_tasks(limit=1)[0].model_copy(update={"id": "copy", "eval_only": False})
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps(copy.to_json()) + "\n" + (Path(__file__).parents[3] / "training/tasks/tasks.jsonl")
                     .read_text())  # fmt: skip
    result = _invoke("train", "decontaminate", "--tasks", str(tasks), "--against", "humaneval",
                     "--out", str(tmp_path / "clean.jsonl"), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["overlaps"] == {"copy": "HumanEval/0"} and report["kept"] == 17


def _rl(tiny_model_dir, out, *extra):
    config = [
        "--preset", "smoke", "--model", str(tiny_model_dir), "--out", str(out), "--no-progress", "--threads", "1",
        "--set", "steps=4", "--set", "save_every=1", "--set", "grpo.max_completion_length=12",
    ]  # fmt: skip
    return [MIMO, "train", "rl", *config, *extra]


@pytest.mark.slow
def test_a_killed_run_resumes_where_it_stopped(tiny_model_dir, tmp_path):
    whole = subprocess.run(_rl(tiny_model_dir, tmp_path / "whole"), capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr[-2000:]
    process = subprocess.Popen(_rl(tiny_model_dir, tmp_path / "killed"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.time() + 240
    while not (tmp_path / "killed/checkpoints/checkpoint-2/curriculum-rank0.json").exists():
        assert time.time() < deadline and process.poll() is None
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed/model").exists()
    resumed = subprocess.run(_rl(tiny_model_dir, tmp_path / "killed", "--resume"), capture_output=True, text=True,
                             timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads((tmp_path / "killed/summary.json").read_text())
    reference = json.loads((tmp_path / "whole/summary.json").read_text())
    assert summary["steps"] == 4 and (tmp_path / "killed/model/model.safetensors").is_file()
    assert summary["curriculum"] == reference["curriculum"]  # the same problems were drawn as without the kill


@pytest.mark.slow
def test_two_processes_under_accelerate_with_gloo(tiny_model_dir, tmp_path):
    accelerate = str(Path(sys.executable).parent / "accelerate")
    command = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "mimo.cli", *_rl(tiny_model_dir,
               tmp_path / "two")[1:]]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    completed = subprocess.run(command, capture_output=True, text=True, timeout=400, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads((tmp_path / "two/summary.json").read_text())
    assert summary["processes"] == 2 and summary["backend"] == "gloo" and summary["steps"] == 4
    last = tmp_path / "two/checkpoints/checkpoint-4"
    pools = [set(json.loads((last / f"curriculum-rank{r}.json").read_text())["main"]) for r in (0, 1)]
    assert pools[0] and pools[1] and not pools[0] & pools[1]  # each process draws from its own share
    assert (tmp_path / "two/model/model.safetensors").is_file()
