"""Commands `mimo eval tasks` and `mimo bench rl`: argument handling only."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from training.errors import UserError
from training.pretrain_cli import user_errors

AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def register(groups: dict[str, typer.Typer]) -> None:
    groups["eval"].command("tasks")(eval_tasks_command)
    groups["bench"].command("rl")(bench_rl_command)


def eval_tasks_command(
    tasks: Annotated[
        str,
        typer.Option(
            help="Tasks: our format, HumanEval, MBPP or LiveCodeBench records; or "
            "a built-in set (project, families-heldout, humaneval...)."
        ),
    ],  # fmt: skip
    model: Annotated[Optional[str], typer.Option(help="A model on our engine: nano or a checkpoint dir.")] = None,
    engine: Annotated[Optional[str], typer.Option(help="An OpenAI-compatible server's URL instead.")] = None,
    samples: Annotated[int, typer.Option(help="Completions per task (pass@k for k <= samples).")] = 1,
    temperature: Annotated[
        Optional[float], typer.Option(help="Default: 0 (greedy) for one sample, else 0.6 (MiMo's evaluation).")
    ] = None,
    top_p: Annotated[Optional[float], typer.Option(help="Default: 1 for one sample, else 0.95.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Longest completion, in tokens.")] = 256,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N tasks.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    threads: Annotated[int, typer.Option(help="torch CPU threads of the native engine (0: default).")] = 0,
    workers: Annotated[int, typer.Option(help="Parallel sandboxes (0 = two per CPU core).")] = 0,
    per_task: Annotated[bool, typer.Option(help="Include each task's per-sample verdicts in the JSON.")] = False,
    json_output: AsJson = False,
) -> None:
    """pass@k of a task file through the sandboxed verifier, completions from our engine or a server."""
    from training.data.progress import progress_bar
    from training.rl.evaluate import EvalSettings, check_completions, generate_completions
    from training.tasks.importers import humaneval_tasks, load_any
    from training.verify import VerifierPool

    with user_errors():
        if (model is None) == (engine is None):
            raise UserError("give exactly one of --model M or --engine URL")
        if samples < 1 or (limit is not None and limit < 1) or max_tokens < 1:
            raise UserError("--samples, --limit and --max-tokens must be at least 1")
        task_list = humaneval_tasks() if tasks == "humaneval" else load_any(_task_file(tasks))
        task_list = task_list[:limit] if limit else task_list
        sampled = samples > 1
        settings = EvalSettings(samples=samples, max_tokens=max_tokens, seed=seed,
                                temperature=temperature if temperature is not None else (0.6 if sampled else 0.0),
                                top_p=top_p if top_p is not None else (0.95 if sampled else 1.0))  # fmt: skip
        with VerifierPool(workers=workers) as pool:  # first: no point generating if the sandbox cannot run
            backend = _engine(model, engine, threads)
            drafts: dict[str, int] = {}
            with progress_bar(f"generating ({model or engine})", len(task_list), unit="tasks") as advance:
                completions = generate_completions(backend, task_list, settings, lambda _: advance(1), drafts)
            with progress_bar("verifying", len(task_list) * samples, unit="runs") as advance:
                report = check_completions(task_list, completions, pool, on_result=lambda _: advance(1))
    data = report.to_json(with_tasks=per_task) | {
        "model": model or engine, "temperature": settings.temperature, "top_p": settings.top_p,
        "max_tokens": max_tokens,
        # The engine's MTP drafts on these completions (None: no drafting, e.g. a remote server's are not reported)
        "mtp_acceptance": round(drafts["accepted"] / drafts["proposed"], 4) if drafts.get("proposed") else None,
    }  # fmt: skip
    if json_output:
        typer.echo(json.dumps(data, indent=2))
    else:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in data["pass_at_k"].items())
        typer.echo(f"{report.tasks} tasks, {samples} sample(s) each: {scores}")


def _task_file(name: str):
    from training.tasks import resolve_task_file

    return resolve_task_file(name)


def _engine(model: str | None, url: str | None, threads: int):
    if url is not None:
        from engine.remote import RemoteEngine

        return RemoteEngine(url)
    from engine.registry import open_engine

    return open_engine(model, "native", threads=threads or None)


def bench_rl_command(
    model: Annotated[
        str, typer.Option(help="The policy: nano or a checkpoint dir (an SFT model is realistic).")
    ] = "nano",
    tasks: Annotated[str, typer.Option(help="Prompts from this task file or built-in set.")] = "families-train",
    prompts: Annotated[int, typer.Option(help="Prompts (groups) per rollout batch.")] = 16,
    generations: Annotated[int, typer.Option(help="Completions per prompt.")] = 8,
    max_tokens: Annotated[int, typer.Option(help="Longest completion, in tokens.")] = 128,
    repeats: Annotated[int, typer.Option(help="Alternate the two rollout timings this often; keep the best.")] = 3,
    loop_steps: Annotated[int, typer.Option(help="RL steps for the loop's rate (0: skip).")] = 4,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 1,
    draft_max_batch: Annotated[
        int | None,
        typer.Option(
            help="MTP drafts only while at most this many sequences decode together [default: the RL "
            "rollouts' setting]; 0: never."
        ),  # fmt: skip
    ] = None,
    json_output: AsJson = False,
) -> None:
    """Rollouts on our engine vs TRL's default generation (rollout_speedup), and the RL loop's steps/s."""
    import torch

    from training.rl.bench import BenchSettings, loop_bench, rollout_bench

    with user_errors():
        if min(prompts, generations, max_tokens, repeats) < 1 or generations < 2:
            raise UserError("--prompts, --max-tokens and --repeats must be at least 1, --generations at least 2")
        torch.set_num_threads(threads)
        if draft_max_batch is not None and draft_max_batch < 0:
            raise UserError("--draft-max-batch must be 0 (never draft) or more")
        chosen = {} if draft_max_batch is None else {"draft_max_batch": draft_max_batch}
        settings = BenchSettings(model=model, tasks=tasks, prompts=prompts, generations=generations,
                                 max_tokens=max_tokens, repeats=repeats, loop_steps=loop_steps, **chosen)  # fmt: skip
        report = {"threads": threads, **rollout_bench(settings)}
        if loop_steps:
            report["loop"] = loop_bench(settings)
    report["goals"] = {"rollout_speedup >= 1.5x on CPU": report["rollout_speedup"] >= 1.5}
    if json_output:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(f"rollouts: ours {report['native']['tokens_per_s']:.0f} tok/s, TRL's default "
                   f"{report['trl_default']['tokens_per_s']:.0f} tok/s: {report['rollout_speedup']:.2f}x")  # fmt: skip
        if "loop" in report:
            typer.echo(
                f"loop: {report['loop']['steps_per_s']:.3f} steps/s, per step {report['loop']['seconds_per_step']}"
            )
