"""`mimo bench decode`: plain versus MTP decoding on the same prompts in one run.

Greedy decoding, so the two modes must give identical output (``identical``); ``speedup`` is MTP decode
tokens/s over plain. Decode rate counts the tokens after the first over the time after the first token, so
prompt processing (the same in both modes) does not dilute the ratio; time to first token is reported apart.
Prompts alternate plain / MTP so load changes on a shared machine hit both modes alike.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Annotated

import typer

from engine.api import DEFAULT_DRAFT_TOKENS, Engine, GenerationRequest, Result, SamplingParams, collect

PROMPTS: tuple[str, ...] = (
    "def fibonacci(n):\n",
    "import os\nimport sys\n\n\ndef main():\n",
    "class Stack:\n    def __init__(self):\n",
    'def quicksort(items):\n    """Sort a list of numbers."""\n',
    "def read_json(path):\n    with open(path) as f:\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n",
    "def is_prime(n: int) -> bool:\n",
    "for line in sys.stdin:\n",
)


@dataclass(frozen=True)
class ModeFigures:
    """One decoding mode over all prompts."""

    tokens: int  # completion tokens
    decode_s: float  # time after each request's first token, summed
    tokens_per_s: float
    mean_ttft_s: float
    drafts_proposed: int
    drafts_accepted: int
    mtp_steps: int  # draft-and-verify steps (native backend; 0 where the backend doesn't say)
    accepted_per_position: list[int]  # [i]: steps whose first i + 1 drafts were all accepted (native backend)


@dataclass(frozen=True)
class DecodeBench:
    model: str
    backend: str
    device: str
    draft_tokens: int  # k, MTP drafts per step
    prompts: int  # prompt runs per mode (the prompt set × --rounds)
    max_tokens: int
    plain: ModeFigures
    mtp: ModeFigures
    speedup: float  # MTP tokens/s over plain
    identical: bool  # every greedy MTP output equals the plain one
    # Per draft position i: the share of MTP steps whose first i + 1 drafts were all accepted (vLLM's definition).
    acceptance_per_position: list[float]
    concurrency: int = 1  # prompts decoded at once; above 1, tokens/s is tokens over wall time


def figures(results: list[Result], wall_s: float | None = None) -> ModeFigures:
    """A mode's figures. With ``wall_s`` (concurrent requests) the rate is every completion token over the wall
    time the groups took, prefills included: the throughput a server sees."""
    decoded = sum(max(r.usage.completion_tokens - 1, 0) for r in results)
    decode_s = sum(r.timings.total_s - r.timings.time_to_first_token_s for r in results)
    if wall_s is not None:
        decoded, decode_s = sum(r.usage.completion_tokens for r in results), wall_s
    return ModeFigures(
        tokens=sum(r.usage.completion_tokens for r in results),
        decode_s=decode_s,
        tokens_per_s=decoded / decode_s if decode_s > 0 else 0.0,
        mean_ttft_s=sum(r.timings.time_to_first_token_s for r in results) / len(results),
        drafts_proposed=sum(r.timings.mtp_drafts_proposed for r in results),
        drafts_accepted=sum(r.timings.mtp_drafts_accepted for r in results),
        mtp_steps=sum(r.timings.mtp_steps for r in results),
        accepted_per_position=[sum(p) for p in zip(*(r.timings.mtp_accepted_per_position for r in results))],
    )


async def run_alternating(engine: Engine, prompts, max_tokens: int, on_prompt=None, concurrency: int = 1):
    """Greedy results per prompt for both modes from one engine, plain and MTP in turn, ``concurrency`` prompts
    at a time; and each mode's wall time over its groups."""
    await collect(engine, _request(prompts[0], 8, use_mtp=False))  # warm-up, not measured
    await collect(engine, _request(prompts[0], 8, use_mtp=True))
    results: dict[bool, list[Result]] = {False: [], True: []}
    wall = {False: 0.0, True: 0.0}
    for start in range(0, len(prompts), concurrency):
        group = prompts[start : start + concurrency]
        for use_mtp in (False, True):
            began = time.perf_counter()
            results[use_mtp] += await asyncio.gather(
                *(collect(engine, _request(prompt, max_tokens, use_mtp)) for prompt in group)
            )
            wall[use_mtp] += time.perf_counter() - began
        if on_prompt:
            for plain, mtp in zip(results[False][-len(group) :], results[True][-len(group) :]):
                on_prompt(plain.usage.completion_tokens + mtp.usage.completion_tokens)
    return results[False], results[True], wall


async def run_one_mode(engine: Engine, prompts, max_tokens: int, on_prompt=None) -> list[Result]:
    """Greedy results per prompt from an engine whose speculative decoding is fixed at construction."""
    await collect(engine, _request(prompts[0], 8, use_mtp=True))  # warm-up, not measured
    results = []
    for prompt in prompts:
        results.append(await collect(engine, _request(prompt, max_tokens, use_mtp=True)))
        if on_prompt:
            on_prompt(results[-1].usage.completion_tokens)
    return results


def _request(prompt: str, max_tokens: int, use_mtp: bool) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, sampling=SamplingParams(max_tokens=max_tokens), use_mtp=use_mtp)


def summarize(info, prompts, max_tokens: int, plain: list[Result], mtp: list[Result], wall=None) -> DecodeBench:
    """``wall`` (concurrent runs): each mode's wall time, which the rates then come from."""
    plain_figures = figures(plain, wall[False] if wall else None)
    mtp_figures = figures(mtp, wall[True] if wall else None)
    return DecodeBench(
        model=info.model,
        backend=info.backend,
        device=info.device,
        draft_tokens=info.draft_tokens,
        prompts=len(prompts),
        max_tokens=max_tokens,
        plain=plain_figures,
        mtp=mtp_figures,
        speedup=mtp_figures.tokens_per_s / plain_figures.tokens_per_s if plain_figures.tokens_per_s else 0.0,
        identical=all(a.texts == b.texts for a, b in zip(plain, mtp)),
        acceptance_per_position=acceptance_per_position(mtp_figures),
    )


def acceptance_per_position(mtp: ModeFigures) -> list[float]:
    if mtp.mtp_steps:
        return [accepted / mtp.mtp_steps for accepted in mtp.accepted_per_position]
    # vLLM reports totals only; for MiMo it drafts one token per step, so the total is position 1's rate.
    return [mtp.drafts_accepted / mtp.drafts_proposed] if mtp.drafts_proposed else []


async def bench_decode(
    model: str, backend: str, max_tokens: int, prompts=PROMPTS, on_prompt=None, concurrency: int = 1, **options
):
    from engine.registry import open_engine

    if backend == "vllm":  # vLLM fixes speculative decoding per engine: one engine per mode, one at a time
        results, info = [], None
        for draft_tokens in (0, 1):
            engine = open_engine(model, backend, num_speculative_tokens=draft_tokens, **options)
            try:
                results.append(await run_one_mode(engine, prompts, max_tokens, on_prompt))
                info = engine.info()
            finally:
                await engine.aclose()
        return summarize(info, prompts, max_tokens, *results)
    engine = open_engine(model, backend, **options)
    try:
        plain, mtp, wall = await run_alternating(engine, prompts, max_tokens, on_prompt, concurrency)
        if concurrency == 1:
            return summarize(engine.info(), prompts, max_tokens, plain, mtp)
        return replace(summarize(engine.info(), prompts, max_tokens, plain, mtp, wall), concurrency=concurrency)
    finally:
        await engine.aclose()


def register(groups: dict[str, typer.Typer]) -> None:
    @groups["bench"].command("decode")
    def decode(
        model: Annotated[str, typer.Option(help="'nano', a checkpoint directory or a cached Hugging Face id")] = "nano",
        backend: Annotated[str, typer.Option(help="native or vllm")] = "native",
        tokens: Annotated[int, typer.Option(help="tokens to generate per prompt")] = 128,
        device: Annotated[str, typer.Option(help="native backend: auto, cpu or cuda")] = "auto",
        threads: Annotated[int, typer.Option(help="native backend on CPU: torch threads (0 = torch's default)")] = 0,
        draft_tokens: Annotated[
            int, typer.Option(help="native backend: MTP drafts per step, k (vLLM drafts 1 for MiMo)")
        ] = DEFAULT_DRAFT_TOKENS,
        kernel: Annotated[
            str, typer.Option(help="native backend: weight kernel, auto, fp16-weights, transposed or device")
        ] = "auto",
        concurrency: Annotated[
            int, typer.Option(min=1, help="native backend: prompts decoded at once (rates: tokens over wall time)")
        ] = 1,
        batching: Annotated[
            bool, typer.Option(help="native backend: batch concurrent requests' steps (off: one after another)")
        ] = True,
        rounds: Annotated[
            int, typer.Option(min=1, help="times through the prompts (rates come from the totals: steadier)")
        ] = 1,
        as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON on stdout")] = False,
    ) -> None:
        """Plain versus MTP speculative decoding: tokens/s, speedup, draft acceptance, time to first token."""
        from engine.api import EngineError

        if backend not in ("native", "vllm") or tokens < 2:
            print("error: --backend must be native or vllm, and --tokens at least 2", file=sys.stderr)
            raise typer.Exit(2)
        if backend == "vllm" and concurrency > 1:
            print("error: --concurrency is for the native backend (vLLM runs one engine per mode)", file=sys.stderr)
            raise typer.Exit(2)
        options = {}
        if backend == "native":
            options = {
                "device": device,
                "threads": threads or None,
                "draft_tokens": draft_tokens,
                "kernel": kernel,
                "batching": batching,
            }
        try:
            result = _run_with_progress(model, backend, tokens, PROMPTS * rounds, concurrency, options)
        except EngineError as error:
            print(f"error: {error}", file=sys.stderr)
            raise typer.Exit(2) from None
        if as_json:
            print(json.dumps(asdict(result), indent=2))
        else:
            _print_table(result)


def _run_with_progress(
    model: str, backend: str, tokens: int, prompts: tuple[str, ...], concurrency: int, options: dict
) -> DecodeBench:
    from rich.console import Console
    from rich.progress import MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        runs = len(prompts) * (2 if backend == "vllm" else 1)  # one update per prompt and engine
        task = progress.add_task("decoding prompts", total=runs, rate="")
        generated = 0

        def on_prompt(new_tokens: int) -> None:
            nonlocal generated
            generated += new_tokens
            elapsed = progress.tasks[0].elapsed or 1e-9
            progress.update(task, advance=1, rate=f"{generated / elapsed:.0f} tok/s")

        return asyncio.run(
            bench_decode(model, backend, tokens, prompts, on_prompt=on_prompt, concurrency=concurrency, **options)
        )


def _print_table(result: DecodeBench) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.model} · {result.backend} · {result.device} · {result.prompts} prompts")
    for column in ("mode", "tokens", "tokens/s", "mean TTFT (s)", "drafts accepted / proposed"):
        table.add_column(column)
    for mode, fig in (("plain", result.plain), ("MTP", result.mtp)):
        drafts = f"{fig.drafts_accepted} / {fig.drafts_proposed}" if fig.drafts_proposed else "-"
        table.add_row(mode, str(fig.tokens), f"{fig.tokens_per_s:.1f}", f"{fig.mean_ttft_s:.3f}", drafts)
    console = Console()
    console.print(table)
    console.print(f"speedup {result.speedup:.2f}x · identical greedy output: {result.identical}")
