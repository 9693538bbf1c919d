"""Commands: `mimo train pretrain`, `mimo train nano`, `mimo eval completion`, `mimo bench train`.

Only argument handling lives here; torch and transformers are imported inside the commands so `mimo --help`
stays fast. Errors a person can fix print one line to stderr and exit with status 2.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from training.errors import UserError


@contextlib.contextmanager
def user_errors():
    """Turns errors a person can fix (bad config, missing data or model) into one stderr line and exit 2."""
    from engine.api import EngineError

    try:
        yield
    except (UserError, EngineError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def with_total_tokens(config, total_tokens: int):
    """`config` with another run length; schedules are fractions of it, so they scale along."""
    from training.config import with_changes

    return with_changes(config, total_tokens=total_tokens)


def _set_threads(threads: int) -> None:
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def register(groups: dict[str, typer.Typer]) -> None:
    train, evaluate, bench = groups["train"], groups["eval"], groups["bench"]

    @train.command("pretrain")
    def pretrain_command(
        config: Annotated[Optional[Path], typer.Option(help="A pretraining config (TOML).")] = None,
        preset: Annotated[Optional[str], typer.Option(help="A built-in config: smoke or nano.")] = None,
        data: Annotated[Optional[Path], typer.Option(help="Base folder for the config's relative paths.")] = None,
        out: Annotated[Path, typer.Option(help="Run folder: checkpoint, TensorBoard logs, model/.")] = Path(
            "runs/pretrain"
        ),
        resume: Annotated[
            bool, typer.Option(help="Continue from OUT/checkpoint.pt (or OUT/checkpoint/, FSDP2).")
        ] = False,
        strategy: Annotated[
            Optional[str],
            typer.Option(help="Under torchrun: ddp (replicated) or fsdp (FSDP2-sharded); overrides the config."),
        ] = None,
        stop_at_step: Annotated[Optional[int], typer.Option(help="Checkpoint and stop after this step.")] = None,
        threads: Annotated[int, typer.Option(help="torch CPU threads (0: torch's default).")] = 0,
        progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
        total_tokens: Annotated[Optional[int], typer.Option(help="Override the config's run length (tokens).")] = None,
        init_from: Annotated[
            Optional[str],
            typer.Option(
                help="Continue from these weights ('nano' or a checkpoint directory) instead of a random init."
            ),
        ] = None,
    ) -> None:
        """Pretrain a MiMo model (trunk + MTP) on a staged data mixture; resumable; torchrun for several processes."""
        import dataclasses

        from training.config import load_pretrain_config, preset_path, resolve_init_from, with_changes
        from training.pretrain import RunOptions, pretrain

        with user_errors():
            if (config is None) == (preset is None):
                raise UserError("give exactly one of --config FILE or --preset NAME")
            config_path = config if config is not None else preset_path(preset)
            run_config = load_pretrain_config(config_path, data_dir=data)
            if total_tokens is not None:
                run_config = with_total_tokens(run_config, total_tokens)
            if strategy is not None:
                run_config = with_changes(run_config, strategy=strategy)
            if init_from is not None:
                run_config = dataclasses.replace(run_config, init_from=resolve_init_from(init_from, Path.cwd()))
            _set_threads(threads)
            result = pretrain(
                run_config, RunOptions(out, resume=resume, stop_at_step=stop_at_step, show_progress=progress)
            )
        where = result.model_dir or out / ("checkpoint" if run_config.strategy == "fsdp" else "checkpoint.pt")
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one line for the run, not one per process
            typer.echo(f"step {result.state.step}, {result.state.tokens_seen:,} tokens: {where}", err=True)

    @train.command("nano")
    def nano_command(
        work: Annotated[
            Path,
            typer.Option(help="Folder for tokenizer/, shards/, run/ (phase 1) and continue-1/, continue-2/ (phase 2)."),
        ] = Path("runs/nano"),
        out: Annotated[Path, typer.Option(help="Where the trained checkpoint is copied.")] = Path("engine/assets/nano"),
        threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 2,
        total_tokens: Annotated[
            Optional[int],
            typer.Option(
                help="Phase 1's length in tokens; the two phase-2 "
                "runs scale along (3.1× more together). The shipped "
                "nano trained on a GPU; a CPU needs far fewer."
            ),
        ] = None,
    ) -> None:
        """The whole mimo-nano recipe: tokenizer, data, pretraining (resumes if started), copy to OUT."""
        import subprocess

        from training.nano_recipe import run_recipe

        try:
            with user_errors():
                model_dir = run_recipe(work, out, threads, total_tokens)
        except subprocess.CalledProcessError as error:
            raise typer.Exit(error.returncode) from None
        typer.echo(
            f"mimo-nano: {model_dir}; evaluate with: mimo eval completion --model {model_dir} "
            f"--data {work / 'shards' / 'heldout'} --json",
            err=True,
        )

    @evaluate.command("completion")
    def completion_command(
        model: Annotated[str, typer.Option(help="'nano', a checkpoint directory or a cached HF id.")] = "nano",
        data: Annotated[Path, typer.Option(help="Held-out files (a folder) to sample cursor points in.")] = ...,
        points: Annotated[int, typer.Option(help="Number of cursor points.")] = 200,
        seed: Annotated[int, typer.Option(help="Seed of the cursor-point sampling.")] = 0,
        mtp_tokens: Annotated[int, typer.Option(help="Teacher-forced positions for MTP acceptance.")] = 16_384,
        threads: Annotated[int, typer.Option(help="torch CPU threads (0: torch's default).")] = 0,
        as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON on stdout.")] = False,
    ) -> None:
        """Next-line exact match and edit similarity (FIM) at sampled cursor points, and MTP draft acceptance."""
        from training.evaluate import EvalOptions, evaluate_completion

        with user_errors():
            _set_threads(threads)
            report = evaluate_completion(
                model, data, EvalOptions(points=points, seed=seed, acceptance_tokens=mtp_tokens)
            )
        if as_json:
            typer.echo(json.dumps(report.as_dict(), indent=2))
        else:
            for key, value in report.as_dict().items():
                typer.echo(f"{key:>16}  {value}")

    @bench.command("train")
    def bench_train_command(
        steps: Annotated[int, typer.Option(help="Timed optimiser steps per loop.")] = 10,
        rounds: Annotated[int, typer.Option(help="Alternating rounds; the best of each loop counts.")] = 2,
        batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 8,
        seq_len: Annotated[int, typer.Option(help="Tokens per sequence.")] = 256,
        threads: Annotated[int, typer.Option(help="torch CPU threads (0: torch's default; with --fsdp: 1).")] = 0,
        fsdp: Annotated[
            bool, typer.Option("--fsdp", help="FSDP2 against DDP on --processes torchrun processes instead.")
        ] = False,
        processes: Annotated[int, typer.Option(help="torchrun processes for --fsdp.")] = 2,
        as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON on stdout.")] = False,
    ) -> None:
        """Pretraining tokens/s of our loop against a plain Hugging Face Trainer, same nano model and batch; or,
        with --fsdp, FSDP2 against DDP on several processes."""
        from training.bench_train import BenchOptions, bench_sharding, bench_train

        with user_errors():
            options = BenchOptions(steps=steps, rounds=rounds, batch_size=batch_size, seq_len=seq_len)
            if fsdp:
                if processes < 2 or batch_size % processes:
                    raise UserError(f"--processes must be at least 2 and divide --batch-size, got {processes}")
                report = bench_sharding(options, processes, threads or 1)
            else:
                _set_threads(threads)
                report = bench_train(options)
        if as_json:
            typer.echo(json.dumps(report, indent=2))
        else:
            for key, value in report.items():
                typer.echo(f"{key:>24}  {value}")
        sys.stderr.flush()
