"""`mimo train sft`: supervised fine-tuning on tasks' reference solutions, the warm start before RL.

MiMo RL-tunes an SFT model. Each task becomes a prompt-completion pair: the prompt is what RL will show the model
(``Task.model_prompt``), the completion the reference solution's continuation of it followed by the end-of-text
token, so the model learns to stop where RL's rollouts should stop. Only completion tokens carry a loss.

Trained with transformers' ``Trainer`` calling the model's own loss, main + λ·MTP, rather than TRL's
``SFTTrainer``: TRL computes its SFT loss through a fused LM head of its own and never calls the model's loss, so
the MTP layer could not follow the trunk, and a fine-tuned trunk with a stale draft layer loses speculative
decoding's speed (nano: drafts accepted at temperature 0.6 fell to 45 % after an SFT with the MTP layer frozen).
With ``mtp = "tune"`` the MTP layer learns to predict what the fine-tuned main head predicts (self-distillation
at ``mtp_distill_temperature``, as nano's phase 2 and `mimo train repo` do); ``"freeze"`` leaves it as it was.

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

IGNORE = -100


def sft_examples(tasks: list[Task]) -> list[dict]:
    """Prompt-completion pairs from the tasks that have a reference solution."""
    return [
        {"prompt": task.model_prompt, "completion": task.reference_completion}
        for task in tasks
        if task.reference_completion
    ]


def tokenize_example(example: dict, tokenizer, max_length: int) -> dict:
    """Token ids of prompt + completion + end-of-text, with labels only on the completion and the end."""
    prompt = tokenizer(example["prompt"])["input_ids"]
    completion = tokenizer(example["completion"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = (prompt + completion)[:max_length]
    labels = ([IGNORE] * len(prompt) + completion)[:max_length]
    return {"input_ids": ids, "labels": labels}


class PadCollator:
    """Right-pads a batch; padding carries no loss and no attention."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        width = max(len(row["input_ids"]) for row in rows)

        def padded(key: str, value: int) -> torch.Tensor:
            return torch.tensor([row[key] + [value] * (width - len(row[key])) for row in rows])

        mask = torch.tensor([[1] * len(row["input_ids"]) + [0] * (width - len(row["input_ids"])) for row in rows])
        return {
            "input_ids": padded("input_ids", self.pad_id),
            "labels": padded("labels", IGNORE),
            "attention_mask": mask,
        }


def run_sft(config: SFTConfig, out_dir: Path, *, base_dir: Path | None = None, resume: bool = False,
            show_progress: bool = True, max_steps: int | None = None) -> Path:  # fmt: skip
    """Trains and exports ``OUT/model``; returns its path."""
    import torch
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

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
    _set_mtp(model, config)
    rows = [tokenize_example(example, tokenizer, config.max_length) for example in examples]
    args = TrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        max_steps=max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=config.warmup_ratio,  # a float below 1 is a share of the steps
        weight_decay=config.weight_decay,
        seed=config.seed,
        logging_steps=1,
        save_strategy="steps",
        save_steps=50,
        save_total_limit=2,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        **device_arguments(),
    )
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                      data_collator=PadCollator(tokenizer.pad_token_id))  # fmt: skip
    quiet_trainer(trainer, RichProgress("sft", show_progress), out_dir / "tensorboard")
    trainer.train(resume_from_checkpoint=last)
    model_dir = export_policy(
        trainer.model, tokenizer, out_dir / MODEL_SUBDIR, config.save_dtype, config.model, "mimo train sft"
    )
    summary = {"examples": len(examples), "steps": trainer.state.global_step, "task_file": str(task_file),
               "mtp": config.mtp, "config": config.model_dump(mode="json")}  # fmt: skip
    summary["final_loss"] = next((r["loss"] for r in reversed(trainer.state.log_history) if "loss" in r), None)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return model_dir


def _set_mtp(model, config: SFTConfig) -> None:
    """The model's own loss is main + λ·MTP; frozen MTP layers get λ = 0 (no gradient, no wasted update)."""
    if not getattr(model, "num_mtp_layers", 0):
        return
    if config.mtp == "freeze":
        freeze_mtp(model)
        model.mtp_loss_weight = 0.0
        return
    model.mtp_loss_weight = config.mtp_loss_weight
    model.mtp_distill_weight = config.mtp_distill_weight
    model.mtp_distill_temperature = config.mtp_distill_temperature
