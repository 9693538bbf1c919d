"""`mimo train repo`: argument handling only (docs/repo-training.md has the details).

Errors a person can fix print one line to stderr and exit with status 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from training.errors import UserError

# LoRA is the default for every base: on nano it lowered the held-out loss as much as full fine-tuning while
# keeping MTP acceptance (full fine-tuning lost 1-3 points; docs/repo-training.md); for MiMo-7B full AdamW
# state (~16 bytes a parameter) would not fit where this runs.
DEFAULT_METHOD = "lora"
DEFAULT_LR = {"full": 1e-3, "lora": 3e-3}


def register(groups: dict[str, typer.Typer]) -> None:
    train = groups["train"]

    @train.command("repo")
    def repo_command(
        sources: Annotated[
            list[str],
            typer.Argument(
                help="Git repositories (tracked files), folders, archives, installed:NAME; NAME=PATH names one.",
                show_default=False,
            ),
        ],  # fmt: skip
        base: Annotated[
            str, typer.Option(help="The model to start from: nano, a checkpoint folder or an HF id.")
        ] = "nano",
        out: Annotated[Path, typer.Option(help="Run folder: data/, checkpoint, model/, adapter/, report.json.")] = Path(
            "runs/repo"
        ),
        lora: Annotated[
            bool, typer.Option("--lora", help="Train LoRA adapters (PEFT; the default); exports merged too.")
        ] = False,
        full: Annotated[bool, typer.Option("--full", help="Fine-tune every weight instead.")] = False,
        held_out: Annotated[float, typer.Option(help="Fraction of files held out for before/after.")] = 0.1,
        validation: Annotated[float, typer.Option(help="Fraction of files for early stopping.")] = 0.1,
        max_minutes: Annotated[float, typer.Option(help="Time budget of the whole run, in minutes.")] = 15.0,
        resume: Annotated[bool, typer.Option(help="Continue the run in --out after a kill.")] = False,
        lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (default per method).")] = None,
        max_epochs: Annotated[float, typer.Option(help="At most this many passes over the training files.")] = 2.0,
        patience: Annotated[int, typer.Option(help="Stop after this many validations without a new best.")] = 2,
        mtp: Annotated[str, typer.Option(help="tune: train the MTP draft layer too; freeze: leave it.")] = "tune",
        lora_rank: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
        lora_alpha: Annotated[int, typer.Option(help="LoRA alpha (scale = alpha / rank).")] = 32,
        lora_targets: Annotated[str, typer.Option(help="Comma-separated module names to adapt.")] = ",".join(
            ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
        ),
        loss_filter: Annotated[bool, typer.Option(help="Reject files the base model finds extreme.")] = True,
        eval_points: Annotated[int, typer.Option(help="Cursor points of the before/after evaluation.")] = 200,
        tasks: Annotated[
            Optional[Path],
            typer.Option(help="Instead of training: mine RL tasks from the repository's tests into this JSONL."),
        ] = None,  # fmt: skip
        max_candidates: Annotated[
            int, typer.Option(help="--tasks: self-test at most this many functions (spread over the files).")
        ] = 400,
        threads: Annotated[int, typer.Option(help="torch CPU threads (0: torch's default).")] = 0,
        progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    ) -> None:
        """Retrain a model on your repositories; before/after figures on held-out files; or mine RL tasks."""
        from training.pretrain_cli import user_errors

        with user_errors():
            if tasks is not None:
                report = _mine(sources, tasks, progress, max_candidates)
            else:
                report = _train(locals())
        if as_json:
            typer.echo(json.dumps(report, indent=2))
        elif tasks is None:
            _print_before_after(report)

    def _say(message: str) -> None:
        typer.echo(message, err=True)

    def _mine(sources: list[str], tasks: Path, progress: bool, max_candidates: int) -> dict:
        from training.repo.mining.mine import MineOptions, mine

        if len(sources) != 1:
            raise UserError("--tasks mines one repository at a time; give exactly one PATH")
        if max_candidates < 1:
            raise UserError(f"--max-candidates must be at least 1, got {max_candidates}")
        options = MineOptions(repo=Path(sources[0]), out=tasks, max_candidates=max_candidates, show_progress=progress)
        report = mine(options, say=_say)
        reasons = ", ".join(f"{reason} {count}" for reason, count in report["dropped"].items()) or "none"
        _say(f"tasks: {report['found']} found, {report['checked']} self-tested, {report['kept']} kept, "
             f"{sum(report['dropped'].values())} dropped ({reasons}) -> {tasks}")  # fmt: skip
        return report

    def _train(args: dict) -> dict:
        from training.repo.run import RepoOptions, run
        from training.repo.trainer import TrainOptions
        from training.repo.tuning import TuneSpec

        if args["lora"] and args["full"]:
            raise UserError("give at most one of --lora and --full")
        if args["threads"] > 0:
            import torch

            torch.set_num_threads(args["threads"])
        method = "full" if args["full"] else DEFAULT_METHOD
        targets = tuple(t.strip() for t in args["lora_targets"].split(",") if t.strip())
        spec = TuneSpec(method=method, mtp=args["mtp"], lora_rank=args["lora_rank"], lora_alpha=args["lora_alpha"],
                        lora_targets=targets)  # fmt: skip
        lr = args["lr"] if args["lr"] is not None else DEFAULT_LR[method]
        train_options = TrainOptions(lr=lr, max_epochs=args["max_epochs"], patience=args["patience"],
                                     weight_decay=0.0 if method == "lora" else 0.1)  # fmt: skip
        options = RepoOptions(
            sources=tuple(args["sources"]), out=args["out"], base=args["base"], spec=spec, train=train_options,
            held_out=args["held_out"], validation=args["validation"], max_minutes=args["max_minutes"],
            resume=args["resume"], loss_filter=args["loss_filter"], eval_points=args["eval_points"],
            show_progress=args["progress"],
        )  # fmt: skip
        return run(options, say=_say if args["progress"] else lambda message: None)


def _print_before_after(report: dict) -> None:
    rows = [("loss per token", "loss", "{:.4f}"), ("next-line exact match", "exact_match", "{:.1%}"),
            ("edit similarity", "edit_similarity", "{:.3f}"), ("MTP acceptance", "mtp_acceptance", "{:.1%}")]  # fmt: skip
    typer.echo(f"{'held-out figure':<24}{'before':>10}{'after':>10}")
    for label, key, form in rows:
        before, after = report["before"].get(key), report["after"].get(key)
        cells = [form.format(v) if v is not None else "-" for v in (before, after)]
        typer.echo(f"{label:<24}{cells[0]:>10}{cells[1]:>10}")
    change = report["change"].get("loss_percent")
    if change is not None:
        typer.echo(f"held-out loss {change:+.1f} % ; model: {report['model']}")
