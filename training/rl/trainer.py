"""`mimo train rl`: TRL's GRPOTrainer configured with MiMo-7B's RL recipe, our curriculum and our rollouts.

What is TRL's and what is ours:
- TRL: the GRPO loss (``loss_type="dapo"``: token-level, 1/Σ|o_i|), group-normalised advantages, clip-higher
  (``epsilon_high``), no KL (``beta=0``), truncated completions masked, the optimiser, checkpoints and resume,
  Accelerate (DDP, FSDP, ZeRO-3), vLLM rollouts.
- ours: which problems each step trains on (``curriculum.py``: Easy Data Re-Sampling, dynamic sampling), the
  rollouts (``rollout_func.py`` over ``generators.py``), the sandboxed code reward (``rewards.py``), frozen MTP
  layers, logging, and the export in the MiMo layout.

A run writes ``OUT/checkpoints/checkpoint-N/`` (TRL's, plus each process's curriculum state), ``OUT/tensorboard/``,
``OUT/model/`` and ``OUT/summary.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainerCallback

from training.errors import UserError
from training.rl.config import RLConfig
from training.rl.curriculum import Curriculum
from training.rl.generators import VerifierScorer
from training.rl.policy import MODEL_SUBDIR, device_arguments, export_policy, freeze_mtp, load_policy, mtp_state
from training.rl.reward_adapters import TrlCodeReward
from training.rl.rollout_func import CodeRollouts, GroupSampling, RolloutLedger
from training.tasks import read_tasks, resolve_task_file
from training.tasks.format import training_tasks

CURRICULUM_FILE = "curriculum-rank{rank}.json"


@dataclass(frozen=True)
class RunOptions:
    out_dir: Path
    resume: bool = False
    show_progress: bool = True
    base_dir: Path | None = None  # where a relative task path is read from
    stop_at_step: int | None = None  # checkpoint and stop here (time-boxed runs, resume tests)


@dataclass
class RLResult:
    steps: int
    model_dir: Path | None
    summary: dict


def grpo_arguments(config: RLConfig, out_dir: Path, world_size: int, stop_at_step: int | None = None):
    """TRL's GRPOConfig from ours: the recipe's knobs, the batch shape, checkpoints and the rollout backend."""
    from trl import GRPOConfig

    grpo = config.grpo
    completions = grpo.problems_per_step * grpo.num_generations
    if completions % world_size or (completions // world_size) % grpo.num_generations:
        raise UserError(
            f"grpo.problems_per_step ({grpo.problems_per_step}) must divide evenly over {world_size} processes, "
            "so that each process holds whole groups"
        )
    vllm = config.rollout.backend.startswith("vllm")
    return GRPOConfig(
        output_dir=str(out_dir / "checkpoints"),
        seed=config.seed,
        max_steps=stop_at_step or config.steps,
        learning_rate=grpo.learning_rate,
        lr_scheduler_type="constant_with_warmup",  # MiMo: a constant LR
        warmup_steps=grpo.warmup_steps,
        weight_decay=grpo.weight_decay,
        max_grad_norm=grpo.max_grad_norm,
        per_device_train_batch_size=completions // world_size,
        gradient_accumulation_steps=1,
        steps_per_generation=grpo.steps_per_generation,
        num_generations=grpo.num_generations,
        max_completion_length=grpo.max_completion_length,
        temperature=grpo.temperature,
        top_p=grpo.top_p,
        top_k=0,
        beta=grpo.beta,
        loss_type=grpo.loss_type,
        epsilon=grpo.epsilon,
        epsilon_high=grpo.epsilon_high,
        scale_rewards=grpo.scale_rewards,
        mask_truncated_completions=grpo.mask_truncated_completions,
        use_vllm=vllm,
        vllm_mode="server" if config.rollout.backend == "vllm-server" else "colocate",
        vllm_server_base_url=config.rollout.vllm_server_base_url,
        vllm_tensor_parallel_size=config.rollout.vllm_tensor_parallel_size,
        vllm_gpu_memory_utilization=config.rollout.vllm_gpu_memory_utilization,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.save_every,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        **device_arguments(),
    )


@dataclass
class PreparedRun:
    trainer: object  # trl.GRPOTrainer
    parts: RunParts
    tokenizer: object
    task_file: Path
    frozen: list[str]  # the MTP parameters kept out of training
    mtp_before: dict
    last_checkpoint: str | None


def prepare_run(config: RLConfig, options: RunOptions, scorer=None) -> PreparedRun:
    """The trainer and our parts, ready to train. ``scorer`` replaces the sandboxed code reward (tests)."""
    import torch
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint
    from trl import GRPOTrainer

    from training.rl.progress import RichProgress, quiet_trainer

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func's "experimental" notice
    task_file = resolve_task_file(config.tasks, options.base_dir)
    tasks = {task.id: task for task in training_tasks(read_tasks(task_file), task_file)}
    if config.threads:
        torch.set_num_threads(config.threads)
    out_dir = Path(options.out_dir)
    checkpoints = out_dir / "checkpoints"
    last = get_last_checkpoint(str(checkpoints)) if options.resume and checkpoints.is_dir() else None
    if options.resume and last is None:
        raise UserError(f"--resume: no checkpoint in {checkpoints}; start without --resume")
    model, tokenizer = load_policy(config.model)
    frozen = freeze_mtp(model)
    mtp_before = mtp_state(model)
    args = grpo_arguments(config, out_dir, int(os.environ.get("WORLD_SIZE", "1")), options.stop_at_step)
    parts = build_parts(config, tasks, tokenizer, scorer)
    dataset = Dataset.from_list([{"prompt": t.model_prompt, "task_id": t.id} for t in tasks.values()])
    trainer = GRPOTrainer(model=model, reward_funcs=[parts.reward], args=args, train_dataset=dataset,
                          processing_class=tokenizer, rollout_func=parts.rollouts)  # fmt: skip
    sharded = any(kind in str(trainer.accelerator.distributed_type) for kind in ("FSDP", "DEEPSPEED"))
    if sharded and config.rollout.backend == "native":
        raise UserError("rollout.backend = 'native' needs the whole model in each process; with FSDP or ZeRO-3 "
                        "use vllm-colocate or vllm-server (training/presets/rl/gpu-*.toml)")  # fmt: skip
    parts.attach(trainer)
    quiet_trainer(trainer, RichProgress("rl", options.show_progress), out_dir / "tensorboard")
    if last is not None:
        parts.load(last, trainer.accelerator.process_index)
    return PreparedRun(trainer, parts, tokenizer, task_file, frozen, mtp_before, last)


def run_rl(config: RLConfig, options: RunOptions, scorer=None) -> RLResult:
    """Trains; exports ``OUT/model`` when the run reaches ``config.steps``."""
    run = prepare_run(config, options, scorer)
    trainer = run.trainer
    try:
        trainer.train(resume_from_checkpoint=run.last_checkpoint)
    finally:
        run.parts.close()
    policy = trainer.accelerator.unwrap_model(trainer.model)
    summary = _summary(config, run, policy)
    model_dir = None
    out_dir = Path(options.out_dir)
    if trainer.state.global_step >= config.steps and trainer.accelerator.is_main_process:
        model_dir = export_policy(
            policy, run.tokenizer, out_dir / MODEL_SUBDIR, config.save_dtype, config.model, "mimo train rl"
        )
    if trainer.accelerator.is_main_process:
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return RLResult(steps=trainer.state.global_step, model_dir=model_dir, summary=summary)


@dataclass
class RunParts:
    """Our side of a run: tasks, this process's curriculum, the rollout function and the reward that share a
    ledger, and the scorer's sandbox pool."""

    tasks: dict
    curriculum: Curriculum
    scorer: VerifierScorer
    rollouts: CodeRollouts
    reward: TrlCodeReward

    def attach(self, trainer) -> None:
        trainer.add_callback(_SaveCurriculum(self.curriculum))

    def load(self, checkpoint: str, rank: int) -> None:
        path = Path(checkpoint) / CURRICULUM_FILE.format(rank=rank)
        if path.is_file():
            self.curriculum.load_state_dict(json.loads(path.read_text(encoding="utf-8")))

    def close(self) -> None:
        self.scorer.close()


def build_parts(config: RLConfig, tasks: dict, tokenizer, scorer=None) -> RunParts:
    """Each process draws from its own share of the problems, with its own seed."""
    from training.verify import Limits, VerifierConfig

    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    ids = list(tasks)[rank::world] or list(tasks)
    curriculum = Curriculum(ids, seed=config.seed * 1000 + rank, mode=config.easy_pool.mode,
                            alpha=config.easy_pool.alpha)  # fmt: skip
    if scorer is None:
        verifier = VerifierConfig(limits=Limits(test_timeout_s=config.reward.test_timeout_s))
        scorer = VerifierScorer(config.reward.scheme, verifier, config.reward.workers)
    eos = (tokenizer.eos_token_id,)  # what TRL counts as a finished completion (GRPOTrainer.eos_token_ids)
    generator = _generator(config, eos)
    ledger = RolloutLedger()
    settings = GroupSampling(num_generations=config.grpo.num_generations,
                               dynamic_sampling=config.dynamic_sampling.enabled,
                               max_draw_factor=config.dynamic_sampling.max_draw_factor, seed=config.seed * 1000 + rank)  # fmt: skip
    rollouts = CodeRollouts(tasks, curriculum, generator, scorer, tokenizer, settings, ledger)
    return RunParts(tasks, curriculum, scorer, rollouts, TrlCodeReward(tasks, scorer, ledger))


def _generator(config: RLConfig, eos: tuple[int, ...]):
    """Our engine's decoder for rollout.backend "native"; TRL's own generation path for the others."""
    import torch

    from training.rl.generators import NativeGenerator, TrlGenerator
    from training.rl.rollout import SamplingSettings

    if config.rollout.backend != "native":
        return TrlGenerator(eos)
    return NativeGenerator(
        SamplingSettings(
            max_tokens=config.grpo.max_completion_length,
            temperature=config.grpo.temperature,
            top_p=config.grpo.top_p,
            use_mtp=config.rollout.use_mtp,
            draft_tokens=config.rollout.draft_tokens,
            draft_max_batch=config.rollout.draft_max_batch,
            stop_ids=eos,
            max_batch=config.rollout.max_batch,
            kernel="device" if torch.cuda.is_available() else "transposed",
        )
    )


class _SaveCurriculum(TrainerCallback):
    """Writes this process's curriculum state into each checkpoint TRL saves, for ``--resume``."""

    def __init__(self, curriculum: Curriculum):
        self.curriculum = curriculum

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        folder.mkdir(parents=True, exist_ok=True)
        rank = int(os.environ.get("RANK", "0"))
        (folder / CURRICULUM_FILE.format(rank=rank)).write_text(json.dumps(self.curriculum.state_dict()))


def _summary(config: RLConfig, run: PreparedRun, policy) -> dict:
    import torch

    after = mtp_state(policy)
    history = [r for r in run.trainer.state.log_history if "reward" in r]
    return {
        "steps": run.trainer.state.global_step,
        "processes": run.trainer.accelerator.num_processes,
        "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
        "task_file": str(run.task_file),
        "tasks": len(run.parts.tasks),
        "frozen_mtp_parameters": len(run.frozen),
        "mtp_unchanged": all(torch.equal(run.mtp_before[name], after[name]) for name in run.mtp_before),
        "curriculum": run.parts.curriculum.sizes | {"draws": run.parts.curriculum.draws},
        "reward_first": history[0]["reward"] if history else None,
        "reward_last": history[-1]["reward"] if history else None,
        "config": config.model_dump(mode="json"),
        "history": history,  # one record per logged step: TRL's figures and ours (the curves in docs/training.md)
    }
