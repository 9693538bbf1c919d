"""`mimo bench lsp`: latency of textDocument/inlineCompletion measured from a real client over stdio.

1. Server overhead: the instant engine (answers at once) on a 5,000-line Python file; each round inserts a
   new line at a different place (so the cache never answers) and asks for a completion there. Goal:
   p50 < 5 ms, p99 < 20 ms.
2. End to end: the same with a real model (mimo-nano by default) on the CPU threads given; single-line
   requests in the middle of statements. Goal: p50 < 150 ms with mimo-nano on 2 cores.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from lsp_server.telemetry import percentile

FILE_LINES = 5000


@dataclass(frozen=True)
class LatencyFigures:
    name: str
    requests: int
    answered: int  # requests that returned a completion
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    engine_calls: int
    server_cpu_ms: float  # the server process's CPU time per round (edit + request + undo), load-independent

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def synthetic_file(lines: int = FILE_LINES) -> str:
    """A Python module of small functions, ``lines`` lines long."""
    out: list[str] = ['"""A long module for the latency benchmark."""', "", "import math", ""]
    index = 0
    while len(out) < lines - 6:
        out += [
            f"def step_{index}(value, scale={index % 7 + 1}):",
            f'    """Scales value for step {index}."""',
            "    total = value * scale + math.sqrt(abs(value))",
            f"    return total - {index}",
            "",
        ]
        index += 1
    return "\n".join(out[:lines]) + "\n"


class BenchSession:
    """One server process and one open document, driven by pygls' client."""

    def __init__(self, options: dict[str, Any], text: str):
        from pygls.lsp.client import LanguageClient

        self.client = LanguageClient("mimo-bench", "1")
        for method in ("mimo/status", lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, lsp.WINDOW_SHOW_MESSAGE):
            self.client.feature(method)(lambda params: None)  # not what we measure
        self.options = options
        self.text = text
        self.uri = Path("bench_module.py").resolve().as_uri()
        self.version = 1

    async def __aenter__(self) -> BenchSession:
        await self.client.start_io(sys.executable, "-m", "lsp_server")
        await self.client.initialize_async(
            lsp.InitializeParams(capabilities=lsp.ClientCapabilities(), initialization_options=self.options)
        )
        self.client.initialized(lsp.InitializedParams())
        item = lsp.TextDocumentItem(uri=self.uri, language_id="python", version=1, text=self.text)
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(item))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()

    def insert(self, line: int, character: int, text: str) -> None:
        self.version += 1
        at = lsp.Position(line, character)
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
                content_changes=[lsp.TextDocumentContentChangePartial(range=lsp.Range(at, at), text=text)],
            )
        )

    def delete_line(self, line: int) -> None:
        self.version += 1
        gone = lsp.Range(lsp.Position(line, 0), lsp.Position(line + 1, 0))
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
                content_changes=[lsp.TextDocumentContentChangePartial(range=gone, text="")],
            )
        )

    async def timed_completion(self, line: int, character: int) -> tuple[float, bool]:
        params = lsp.InlineCompletionParams(
            text_document=lsp.TextDocumentIdentifier(self.uri),
            position=lsp.Position(line, character),
            context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Automatic),
        )
        started = time.perf_counter()
        result = await self.client.text_document_inline_completion_async(params)
        elapsed_ms = (time.perf_counter() - started) * 1000
        items = result.items if isinstance(result, lsp.InlineCompletionList) else (result or [])
        return elapsed_ms, bool(items)

    async def stats(self) -> Any:
        return await self.client.protocol.send_request_async("mimo/debugStats", None)

    async def wait_until_ready(self, timeout_s: float = 600.0) -> None:
        """Waits for the model to load; raises when it failed to (the figures would be empty)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats = await self.client.protocol.send_request_async("mimo/debugStats", None)
            if stats.engine_state == "error":
                raise RuntimeError(f"the server could not open its engine: {stats.engine_error}")
            if stats.engine_state != "loading":
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the model did not load within {timeout_s:.0f} s")


async def _measure(
    name: str,
    options: dict[str, Any],
    rounds: int,
    warmup: int,
    line_text: Callable[[int], tuple[int, str]],
    on_round: Callable[[], None] = lambda: None,
) -> LatencyFigures:
    """Each round inserts the line ``line_text(round)`` gives, times a completion at its end, then removes it
    again (so the file keeps its layout and every round asks at a new place: no cache hits)."""
    latencies, answered, cpu_start = [], 0, 0.0
    async with BenchSession(options, synthetic_file()) as session:
        await session.wait_until_ready()
        for round_index in range(warmup + rounds):
            if round_index == warmup:
                cpu_start = (await session.stats()).cpu_s
            line, text = line_text(round_index)
            session.insert(line, 0, text + "\n")
            elapsed_ms, got = await session.timed_completion(line, len(text))
            session.delete_line(line)
            if round_index >= warmup:
                latencies.append(elapsed_ms)
                answered += got
                on_round()
        final = await session.stats()
    latencies.sort()
    return LatencyFigures(
        name, rounds, answered, percentile(latencies, 50), percentile(latencies, 90), percentile(latencies, 99),
        sum(latencies) / len(latencies), int(final.engine_calls), (final.cpu_s - cpu_start) * 1000 / rounds,
    )  # fmt: skip


def _function_row(round_index: int, stride: int) -> int:
    """The row of a "def step_N" line of the synthetic file, a different function each round."""
    return 4 + (round_index * stride % 900) * 5


def blank_body_line(round_index: int) -> tuple[int, str]:
    """A new, still empty line after a function's docstring."""
    return _function_row(round_index, 37) + 2, "    "


def started_statement(round_index: int) -> tuple[int, str]:
    """A statement begun after the docstring: the model completes the rest of the line."""
    return _function_row(round_index, 53) + 2, "    result = value * "


def _options(engine: dict[str, Any]) -> dict[str, Any]:
    return {
        "engine": engine,
        "completion": {"debounceMs": 0, "maxDebounceMs": 0},
        "telemetry": {"enabled": False},
        "diagnostics": {"enabled": False},
    }


async def overhead(rounds: int, on_round: Callable[[], None]) -> LatencyFigures:
    options = _options({"backend": "instant", "instantText": "pass"})
    return await _measure("server overhead, instant engine", options, rounds, 10, blank_body_line, on_round)


async def end_to_end(model: str, threads: int, rounds: int, on_round: Callable[[], None]) -> LatencyFigures:
    options = _options({"backend": "native", "model": model, "threads": threads})
    name = f"end to end, single line, model {model}, {threads} threads"
    return await _measure(name, options, rounds, 2, started_statement, on_round)


def run_benchmarks(rounds: int, model_rounds: int, model: str, threads: int) -> list[LatencyFigures]:
    """Both runs with a rich progress bar on stderr; the model run only when ``model_rounds`` > 0."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:.1f} req/s" if task.speed else "")

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeElapsedColumn())
    figures = []
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("server overhead", total=rounds)
        figures.append(asyncio.run(overhead(rounds, lambda: progress.advance(task))))
        if model_rounds:
            task = progress.add_task(f"end to end ({model})", total=model_rounds)
            figures.append(asyncio.run(end_to_end(model, threads, model_rounds, lambda: progress.advance(task))))
    return figures
