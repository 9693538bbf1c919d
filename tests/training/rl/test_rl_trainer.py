"""The RL loop on TRL's GRPOTrainer with a tiny random MiMo: what reaches the loss, frozen MTP layers, export.

The reward is the one boundary replaced here (``FakeScorer``): a random tiny model never passes a real test, and
these tests are about what the loop does with rewards, not about the sandbox (test_rl_rewards.py covers that).
"""

from __future__ import annotations

import json

import pytest
import torch

from training.rl.config import RLConfig
from training.rl.rewards import Reward
from training.rl.trainer import RunOptions, prepare_run, run_rl

# Every rollout of the project's stdio tasks scores the same (8 of its 17 tasks).
FLAT = {"add_two", "reverse_words", "min_max", "distinct_words", "mean", "transpose", "grid_path", "components"}


class FakeScorer:
    """Scores by the completion's length parity, except the FLAT tasks, which always score 0."""

    scheme = "binary"

    def __init__(self):
        self.calls = 0

    def score(self, task, texts):
        self.calls += len(texts)
        scores = [0.0 if task.id in FLAT else float(len(text) % 2) for text in texts]
        return [Reward(s, (s == 1.0,) * len(task.tests), (0,) * len(task.tests), s == 1.0) for s in scores]

    def close(self):
        pass


def _config(model_dir, tmp_path, **changes) -> RLConfig:
    base = {
        "model": str(model_dir), "tasks": "project", "seed": 0, "steps": 2, "save_every": 100, "threads": 1,
        "grpo": {"num_generations": 4, "problems_per_step": 3, "max_completion_length": 12,
                 "learning_rate": 1e-3, "mask_truncated_completions": False},
    }  # fmt: skip
    for key, value in changes.items():
        section, _, leaf = key.partition("__")
        (base.setdefault(section, {}).__setitem__(leaf, value) if leaf else base.__setitem__(section, value))
    return RLConfig.model_validate(base)


def _spy(run):
    """Records what each rollout returned and the loss mask of every micro-batch the loss saw."""
    rollouts, seen = [], []
    original_rollouts, original_loss = run.trainer.rollout_func, run.trainer._compute_loss

    def rollout_spy(prompts, trainer):
        output = original_rollouts(prompts, trainer)
        rollouts.append(output)
        return output

    def loss_spy(model, inputs):
        mask = inputs["completion_mask"] * inputs.get("tool_mask", 1)
        seen.append(int(mask.sum()))
        return original_loss(model, inputs)

    run.trainer.rollout_func, run.trainer._compute_loss = rollout_spy, loss_spy
    return rollouts, seen


@pytest.mark.parametrize("dynamic", [True, False])
def test_a_group_of_equal_rewards_never_reaches_the_loss(tiny_model_dir, tmp_path, dynamic):
    scorer = FakeScorer()
    config = _config(tiny_model_dir, tmp_path, dynamic_sampling__enabled=dynamic)
    run = prepare_run(config, RunOptions(tmp_path / "out", show_progress=False), scorer)
    rollouts, seen = _spy(run)
    run.trainer.train()
    flat_live = flat_masked = live_tokens = 0
    for output in rollouts:
        assert len(output["task_id"]) == 3 * 4  # the optimiser batch stays full: 3 groups of 4
        for task_id, ids, mask in zip(output["task_id"], output["completion_ids"], output["env_mask"]):
            live = set(mask) == {1}
            flat_live += task_id in FLAT and live
            flat_masked += task_id in FLAT and not live
            live_tokens += len(ids) if live else 0
    assert sum(seen) == live_tokens  # exactly the unmasked rollouts' tokens reached the loss
    if dynamic:
        assert flat_live == 0  # a flat group only ever fills an empty place, masked
    else:
        assert flat_live > 0 and flat_masked == 0  # without dynamic sampling they reach the loss (zero advantage)
    history = [r for r in run.trainer.state.log_history if "dynamic/dropped_share" in r]
    assert len(history) == 2 and all(0 <= r["dynamic/dropped_share"] <= 1 for r in history)


def test_the_mtp_layers_stay_bit_identical_while_the_trunk_learns(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file

    from training.rl.policy import load_policy

    scorer = FakeScorer()
    result = run_rl(_config(tiny_model_dir, tmp_path), RunOptions(tmp_path / "out", show_progress=False), scorer)
    assert result.steps == 2 and result.summary["mtp_unchanged"] and result.summary["frozen_mtp_parameters"] > 0
    before, _ = load_policy(str(tiny_model_dir))
    after = load_file(result.model_dir / "model.safetensors")
    changed = {name for name, value in before.state_dict().items() if not torch.equal(value, after[name])}
    mtp = {name for name in after if ".mtp_layers." in name}
    assert mtp and not changed & mtp  # every MTP weight is exactly what it was
    assert len(changed) > len(before.state_dict()) // 2  # while most of the trunk moved
    config = json.loads((result.model_dir / "config.json").read_text())
    assert config["architectures"] == ["MiMoForCausalLM"] and config["num_nextn_predict_layers"] == 1
    assert (result.model_dir / "modeling_mimo.py").is_file() and (result.model_dir / "tokenizer.json").is_file()
    assert json.loads((result.model_dir / "mimo-card.json").read_text())["model"] == "out"  # policy_card


def test_the_reward_function_reuses_the_rollouts_scores(tiny_model_dir, tmp_path):
    scorer = FakeScorer()
    # 12 sequences a step: drafts at any batch size, so the rollouts' MTP acceptance is logged
    config = _config(tiny_model_dir, tmp_path, steps=1, dynamic_sampling__enabled=False, rollout__draft_max_batch=64)
    run = prepare_run(config, RunOptions(tmp_path / "out", show_progress=False), scorer)
    run.trainer.train()
    assert scorer.calls == 3 * 4  # scored once, in the rollout; TRL's reward call read the ledger
    logged = run.trainer.state.log_history[0]
    for key in (
        "rollout/pass_rate",
        "curriculum/easy_pool",
        "dynamic/dropped_share",
        "rollout/mtp_acceptance",
        "time/generation_s",
        "time/rewards_s",
        "completions/mean_length",
        "entropy",
        "reward",
    ):
        assert key in logged, key


def test_the_tuned_checkpoint_serves_and_its_greedy_mtp_output_equals_plain(tiny_model_dir, tmp_path):
    import asyncio

    from engine.api import GenerationRequest, SamplingParams, collect
    from engine.registry import open_engine

    result = run_rl(_config(tiny_model_dir, tmp_path, steps=1), RunOptions(tmp_path / "out", show_progress=False),
                    FakeScorer())  # fmt: skip
    engine = open_engine(str(result.model_dir), "native", threads=1)

    async def greedy(use_mtp: bool) -> str:
        sampling = SamplingParams(max_tokens=32, temperature=0.0)
        request = GenerationRequest(prompt="def f(x):\n    return", sampling=sampling, use_mtp=use_mtp)
        return (await collect(engine, request)).texts[0]

    async def both():
        try:
            return await greedy(True), await greedy(False), engine.info()
        finally:
            await engine.aclose()

    drafted, plain, info = asyncio.run(both())
    assert info.mtp_layers == 1 and info.draft_tokens > 0
    assert drafted == plain and drafted


def test_trls_own_generation_runs_the_same_recipe(tiny_model_dir, tmp_path):
    config = _config(tiny_model_dir, tmp_path, steps=1, rollout__backend="trl")
    run = prepare_run(config, RunOptions(tmp_path / "out", show_progress=False), FakeScorer())
    rollouts, seen = _spy(run)
    run.trainer.train()
    (output,) = rollouts
    assert len(output["completion_ids"]) == 12 and sum(seen) > 0
    assert "rollout/mtp_acceptance" not in run.trainer.state.log_history[0]  # transformers generate: no drafts


@pytest.mark.slow
def test_bench_rl_reports_the_speedup_and_the_loop(tiny_model_dir):
    from typer.testing import CliRunner

    from mimo.cli import app

    result = CliRunner().invoke(app, ["bench", "rl", "--model", str(tiny_model_dir), "--tasks", "project",
                                      "--prompts", "2", "--generations", "2", "--max-tokens", "8", "--repeats", "1",
                                      "--loop-steps", "1", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rollout_speedup"] > 0 and report["native"]["tokens"] > 0 and report["trl_default"]["tokens"] > 0
    assert set(report["loop"]["seconds_per_step"]) == {"generation", "rewards", "update"}
