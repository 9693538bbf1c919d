"""Commands `mimo train rl`, `mimo train sft`, `mimo train calibrate`, `mimo train make-tasks` and
`mimo train decontaminate`: argument handling only (the work is in the modules beside this one).

torch, transformers and TRL are imported inside the commands, so `mimo --help` stays fast. A mistake a person can
fix prints one line to stderr and exits with status 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from training.errors import UserError
from training.pretrain_cli import user_errors

Config = Annotated[Optional[Path], typer.Option(help="A config file (TOML).")]
Preset = Annotated[Optional[str], typer.Option(help="A built-in config: smoke or nano.")]
Sets = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config key: --set reward.scheme=soft (repeatable)."),
]
Tasks = Annotated[Optional[str], typer.Option(help="Task file, or project / families-sft / families-train.")]
Model = Annotated[Optional[str], typer.Option(help="Starting model: 'nano' or a checkpoint directory.")]
Resume = Annotated[bool, typer.Option(help="Continue from the last checkpoint in OUT/checkpoints.")]
Progress = Annotated[bool, typer.Option(help="Show the progress bar.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def register(groups: dict[str, typer.Typer]) -> None:
    train = groups["train"]
    train.command("rl")(rl_command)
    train.command("sft")(sft_command)
    train.command("calibrate")(calibrate_command)
    train.command("make-tasks")(make_tasks_command)
    train.command("decontaminate")(decontaminate_command)


def _load(kind: str, model_cls, config: Path | None, preset: str | None, sets: list[str] | None, **direct):
    """The run's config: file or preset, then --set overrides, then the direct options (--tasks, --model...)."""
    from training.rl.config import load_config, preset_path

    if config is not None and preset is not None:
        raise UserError("give at most one of --config FILE or --preset NAME")
    path = config if config is not None else preset_path(kind, preset or "smoke")
    if direct.get("tasks") is not None:  # a path given on the command line is read from here, not the config's
        direct["tasks"] = _from_here(direct["tasks"])
    overrides = list(sets or []) + [f"{key}={json.dumps(value)}" for key, value in direct.items() if value is not None]
    return load_config(model_cls, path, overrides), (path.parent if config is not None else Path.cwd())


def _from_here(name: str) -> str:
    from training.tasks import BUILTIN_SETS

    return name if name in BUILTIN_SETS else str(Path(name).expanduser().resolve())


def rl_command(
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, TensorBoard logs, model/.")] = Path("runs/rl"),
    config: Config = None,
    preset: Preset = None,
    set_: Sets = None,
    tasks: Tasks = None,
    model: Model = None,
    steps: Annotated[Optional[int], typer.Option(help="Optimiser steps.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the run.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads (0: torch's default).")] = None,
    resume: Resume = False,
    stop_at_step: Annotated[Optional[int], typer.Option(help="Checkpoint and stop after this step.")] = None,
    progress: Progress = True,
) -> None:
    """RL-tune a model on code tasks with GRPO (TRL) and MiMo-7B's recipe; resumable; see docs/training.md."""
    from training.rl.config import RLConfig
    from training.rl.trainer import RunOptions, run_rl

    with user_errors():
        run_config, base = _load("rl", RLConfig, config, preset, set_, tasks=tasks, model=model, steps=steps,
                                 seed=seed, threads=threads)  # fmt: skip
        options = RunOptions(out, resume=resume, show_progress=progress, base_dir=base, stop_at_step=stop_at_step)
        result = run_rl(run_config, options)
    where = result.model_dir or out / "checkpoints"
    typer.echo(f"step {result.steps}: {where}", err=True)


def sft_command(
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, TensorBoard logs, model/.")] = Path("runs/sft"),
    config: Config = None,
    preset: Preset = None,
    set_: Sets = None,
    tasks: Tasks = None,
    model: Model = None,
    epochs: Annotated[Optional[float], typer.Option(help="Passes over the examples.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the run.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads (0: torch's default).")] = None,
    resume: Resume = False,
    progress: Progress = True,
) -> None:
    """Fine-tune a model on tasks' reference solutions (TRL's SFTTrainer): the warm start before RL."""
    from training.rl.config import SFTConfig
    from training.rl.sft import run_sft

    with user_errors():
        run_config, base = _load("sft", SFTConfig, config, preset, set_, tasks=tasks, model=model, epochs=epochs,
                                 seed=seed, threads=threads)  # fmt: skip
        model_dir = run_sft(run_config, out, base_dir=base, resume=resume, show_progress=progress)
    typer.echo(f"fine-tuned model: {model_dir}", err=True)


def calibrate_command(
    tasks: Annotated[str, typer.Option(help="Task file (or a built-in set) to calibrate.")],
    out: Annotated[Path, typer.Option(help="Where the calibrated tasks are written (JSONL).")],
    model: Annotated[Optional[list[str]], typer.Option(help="A reference model on our engine (repeatable).")] = None,
    engine: Annotated[Optional[list[str]], typer.Option(help="An OpenAI-compatible server's URL (repeatable).")] = None,
    rollouts: Annotated[int, typer.Option(help="Rollouts per task and reference model.")] = 8,
    levels: Annotated[int, typer.Option(help="Difficulty levels at most.")] = 3,
    temperature: Annotated[float, typer.Option(help="Sampling temperature of the rollouts.")] = 1.0,
    max_tokens: Annotated[int, typer.Option(help="Longest completion, in tokens.")] = 256,
    workers: Annotated[int, typer.Option(help="Parallel sandboxes (0 = two per CPU core).")] = 0,
    json_output: AsJson = False,
) -> None:
    """Per-test pass rates from reference models' rollouts, grouped into difficulty levels, stored in the tasks."""
    from training.rl.calibrate_run import CalibrationRequest, calibrate

    with user_errors():
        if not model and not engine:
            raise UserError("name at least one reference: --model M and/or --engine URL")
        if rollouts < 1 or levels < 1:
            raise UserError("--rollouts and --levels must be at least 1")
        request = CalibrationRequest(tasks, out, list(model or []), list(engine or []), rollouts, levels,
                                     temperature, max_tokens, workers)  # fmt: skip
        report = calibrate(request)
    if json_output:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(f"{report['tasks']} tasks calibrated into {out} (level sizes {report['tests_per_level']})", err=True)


def make_tasks_command(
    out: Annotated[Path, typer.Option(help="Folder for sft.jsonl, train.jsonl and heldout.jsonl.")] = Path(
        "training/tasks/generated"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the draws.")] = 0,
) -> None:
    """Generate the RL proof's task families: disjoint SFT, RL-training and held-out sets (see docs/training.md)."""
    from training.tasks import write_tasks
    from training.tasks.pipelines import generate_sets

    with user_errors():
        for name, tasks in generate_sets(seed=seed).items():
            write_tasks(out / f"{name}.jsonl", tasks)
            typer.echo(f"{name}: {len(tasks)} tasks -> {out / f'{name}.jsonl'}", err=True)


def decontaminate_command(
    tasks: Annotated[str, typer.Option(help="Training tasks (a file or a built-in set).")],
    against: Annotated[list[str], typer.Option(help="An evaluation set: a file, or 'humaneval' (repeatable).")],
    out: Annotated[Path, typer.Option(help="Where the kept tasks are written (JSONL).")],
    n: Annotated[int, typer.Option(help="n-gram length in word tokens.")] = 13,
    json_output: AsJson = False,
) -> None:
    """Drop training tasks that share a word n-gram with an evaluation set."""
    from training.tasks import resolve_task_file, write_tasks
    from training.tasks.decontaminate import decontaminate
    from training.tasks.importers import humaneval_tasks, load_any

    with user_errors():
        if n < 1:
            raise UserError("--n must be at least 1")
        train = load_any(resolve_task_file(tasks))
        evaluation = [task for name in against for task in
                      (humaneval_tasks() if name == "humaneval" else load_any(resolve_task_file(name)))]  # fmt: skip
        result = decontaminate(train, evaluation, n)
        write_tasks(out, result.kept)
    report = {"kept": len(result.kept), "dropped": len(result.dropped), "overlaps": result.dropped, "n": n}
    if json_output:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(f"kept {report['kept']}, dropped {report['dropped']} -> {out}", err=True)
