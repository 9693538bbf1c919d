"""`mimo train sft`: supervised fine-tuning on tasks' reference solutions, with TRL's SFTTrainer.

The warm start MiMo gives its RL stage (it RL-tunes an SFT model): each task becomes a prompt-completion pair,
the prompt being what RL will show the model (``Task.model_prompt``) and the completion the reference solution's
continuation of it, then the end-of-text token, so the model learns to stop where RL's rollouts should stop. The
loss is on the completion tokens only. TRL's SFT loss is the main head's; the MTP layers take no part and stay as
they were (they are frozen explicitly, as in RL).

The run writes ``OUT/checkpoints/`` (resumable with ``--resume``), ``OUT/tensorboard/`` and ``OUT/model/``.
"""

from __future__ import annotations

import json
from pathlib import Path

from training.errors import UserError
from training.rl.config import SFTConfig
from training.rl.policy import MODEL_SUBDIR, device_arguments, export_policy, freeze_mtp, load_policy
from training.tasks import read_tasks, resolve_task_file
from training.tasks.format import Task, training_tasks


def sft_examples(tasks: list[Task]) -> list[dict]:
    """Prompt-completion pairs from the tasks that have a reference solution."""
    return [
        {"prompt": task.model_prompt, "completion": task.reference_completion}
        for task in tasks
        if task.reference_completion
    ]


def run_sft(config: SFTConfig, out_dir: Path, *, base_dir: Path | None = None, resume: bool = False,
            show_progress: bool = True, max_steps: int | None = None) -> Path:  # fmt: skip
    """Trains and exports ``OUT/model``; returns its path."""
    import torch
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig as TrlSFTConfig
    from trl import SFTTrainer

    from training.rl.progress import RichProgress, quiet_trainer

    task_file = resolve_task_file(config.tasks, base_dir)
    examples = sft_examples(training_tasks(read_tasks(task_file), task_file))
    if not examples:
        raise UserError(f"{task_file}: no task has a reference solution to fine-tune on")
    if config.threads:
        torch.set_num_threads(config.threads)
    out_dir = Path(out_dir)
    checkpoints = out_dir / "checkpoints"
    last = get_last_checkpoint(str(checkpoints)) if resume and checkpoints.is_dir() else None
    if resume and last is None:
        raise UserError(f"--resume: no checkpoint in {checkpoints}; start without --resume")
    model, tokenizer = load_policy(config.model)
    freeze_mtp(model)
    args = TrlSFTConfig(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        max_steps=max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=config.warmup_ratio,  # a float below 1 is a share of the steps
        weight_decay=config.weight_decay,
        max_length=config.max_length,
        completion_only_loss=True,
        seed=config.seed,
        logging_steps=1,
        save_strategy="steps",
        save_steps=50,
        save_total_limit=2,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        **device_arguments(),
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tokenizer)
    quiet_trainer(trainer, RichProgress("sft", show_progress), out_dir / "tensorboard")
    trainer.train(resume_from_checkpoint=last)
    model_dir = export_policy(trainer.model, tokenizer, out_dir / MODEL_SUBDIR, config.save_dtype)
    summary = {"examples": len(examples), "steps": trainer.state.global_step, "task_file": str(task_file)}
    summary["final_loss"] = next((r["loss"] for r in reversed(trainer.state.log_history) if "loss" in r), None)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return model_dir
