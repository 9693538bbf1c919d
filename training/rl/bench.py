"""`mimo bench rl`: rollout throughput of our engine against TRL's default generation, and the whole loop's rate.

Rollouts: the same policy, prompts, number of samples, temperature and length limit go through (a) our
``NativeGenerator`` (the engine's decoder over the policy's weights: continuous batching, MTP speculative
sampling, drafting while the batch is at most ``[rollout] draft_max_batch`` sequences, as RL's rollouts do),
(a') the same drafting at every step (``native_mtp_every_step``) and without drafts (``native_plain``: how much
of the gain is MTP's), and (b) TRL's
own generation path (``GRPOTrainer._generate_single_turn`` without vLLM:
transformers ``generate`` on the left-padded batch), alternately, ``repeats`` times each; the best time of each
counts. Throughput is completion tokens (up to and including the end-of-text token) per second, so a backend is
not credited for padding; ``rollout_speedup`` is ours over TRL's.

Loop: a short `mimo train rl` run on the same policy and tasks, with the time of each step split into generation,
rewards (sandboxed verification) and the update (the rest: TRL's log-probabilities, loss, backward, optimiser).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from training.rl.config import RLConfig, RolloutSettings


@dataclass(frozen=True)
class BenchSettings:
    model: str = "nano"
    tasks: str = "families-train"
    prompts: int = 16
    generations: int = 8
    max_tokens: int = 128
    temperature: float = 1.0
    repeats: int = 3
    loop_steps: int = 4
    seed: int = 0
    draft_max_batch: int | None = RolloutSettings().draft_max_batch  # the RL rollouts' default


def rollout_bench(settings: BenchSettings) -> dict:
    import torch

    from training.rl.generators import NativeGenerator, TrlGenerator
    from training.rl.rollout import SamplingSettings
    from training.tasks import read_tasks, resolve_task_file

    tasks = read_tasks(resolve_task_file(settings.tasks))[: settings.prompts]
    trainer = _bare_trainer(settings)
    tokenizer = trainer.processing_class
    prompts = [tokenizer(task.model_prompt)["input_ids"] for task in tasks]
    eos = (tokenizer.eos_token_id,)
    common = {"max_tokens": settings.max_tokens, "temperature": settings.temperature, "stop_ids": eos,
              "max_batch": len(prompts) * settings.generations}  # fmt: skip
    generators = {
        "native": NativeGenerator(SamplingSettings(**common, draft_max_batch=settings.draft_max_batch)),
        "native_mtp_every_step": NativeGenerator(SamplingSettings(**common)),
        "native_plain": NativeGenerator(SamplingSettings(**common, use_mtp=False)),  # MTP's share of the gain
        "trl": TrlGenerator(eos),
    }
    best = dict.fromkeys(generators)
    for repeat in range(settings.repeats):
        for name, generator in generators.items():
            with torch.no_grad():
                groups, stats = generator.generate(trainer, prompts, settings.generations, settings.seed + repeat)
            figures = {"tokens": stats.tokens, "seconds": stats.seconds, "tokens_per_s": stats.tokens_per_s,
                       "truncated_share": _truncated(groups)}  # fmt: skip
            if stats.acceptance is not None:
                figures["mtp_acceptance"] = stats.acceptance
            if best[name] is None or figures["tokens_per_s"] > best[name]["tokens_per_s"]:
                best[name] = figures
    return {
        "model": settings.model,
        "prompts": len(prompts),
        "generations": settings.generations,
        "max_tokens": settings.max_tokens,
        "temperature": settings.temperature,
        "draft_max_batch": settings.draft_max_batch,
        "native": _rounded(best["native"]),
        "native_mtp_every_step": _rounded(best["native_mtp_every_step"]),
        "native_plain": _rounded(best["native_plain"]),
        "trl_default": _rounded(best["trl"]),
        "rollout_speedup": round(best["native"]["tokens_per_s"] / best["trl"]["tokens_per_s"], 3),
    }


def _bare_trainer(settings: BenchSettings):
    """A GRPOTrainer over the policy, only for its generation path (the same arguments a run would use)."""
    import os

    from datasets import Dataset
    from trl import GRPOTrainer

    from training.rl.policy import load_policy
    from training.rl.trainer import grpo_arguments

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    config = RLConfig(model=settings.model, grpo={"num_generations": settings.generations, "problems_per_step": 1,
                                                  "max_completion_length": settings.max_tokens,
                                                  "temperature": settings.temperature})  # fmt: skip
    model, tokenizer = load_policy(settings.model)
    args = grpo_arguments(config, Path(tempfile.mkdtemp(prefix="mimo-bench-rl-")), world_size=1)
    return GRPOTrainer(model=model, reward_funcs=[lambda completions, **_: [0.0] * len(completions)], args=args,
                       train_dataset=Dataset.from_list([{"prompt": "x"}]), processing_class=tokenizer)  # fmt: skip


def loop_bench(settings: BenchSettings) -> dict:
    """A few RL steps on our rollouts; steps/s and where the time goes."""
    from training.rl.trainer import RunOptions, run_rl

    config = RLConfig(model=settings.model, tasks=settings.tasks, seed=settings.seed, steps=settings.loop_steps,
                      save_every=10**6, grpo={"num_generations": settings.generations,
                                              "problems_per_step": max(1, settings.prompts // 2),
                                              "max_completion_length": settings.max_tokens,
                                              "learning_rate": 1e-6},
                      rollout={"draft_max_batch": settings.draft_max_batch})  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mimo-bench-rl-") as out:
        started = time.perf_counter()
        result = run_rl(config, RunOptions(Path(out), show_progress=False))
        seconds = time.perf_counter() - started
    steps = [record for record in result.summary["history"] if "time/generation_s" in record]
    generation = sum(r["time/generation_s"] for r in steps)
    rewards = sum(r["time/rewards_s"] for r in steps)
    stepping = sum(r.get("step_time", 0.0) for r in steps) or seconds
    return {
        "steps": len(steps),
        "problems_per_step": config.grpo.problems_per_step,
        "steps_per_s": round(len(steps) / stepping, 4),
        "seconds_per_step": {
            "generation": round(generation / len(steps), 3),
            "rewards": round(rewards / len(steps), 3),
            "update": round(max(stepping - generation - rewards, 0.0) / len(steps), 3),
        },
        "wall_s_with_setup": round(seconds, 1),
    }


def _truncated(groups) -> float:
    completions = [c for group in groups for c in group]
    return sum(not c.finished for c in completions) / len(completions)


def _rounded(figures: dict) -> dict:
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in figures.items()}
