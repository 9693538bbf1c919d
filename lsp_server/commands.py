"""`mimo lsp`, `mimo complete`, `mimo stats` and `mimo bench lsp`: argument parsing and printing only; the
work is in launch.py, shell.py, telemetry.py and bench.py."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated

import typer


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def register(groups: dict[str, typer.Typer]) -> None:
    root, bench = groups["root"], groups["bench"]
    root.command("lsp")(lsp_command)
    root.command("complete")(complete_command)
    root.command("stats")(stats_command)
    bench.command("lsp")(bench_lsp_command)


def lsp_command(
    stdio: Annotated[bool, typer.Option("--stdio", help="Talk over stdin/stdout (the default).")] = False,
    tcp: Annotated[str | None, typer.Option("--tcp", metavar="HOST:PORT", help="Listen on TCP instead.")] = None,
) -> None:
    """Run the MiMo language server (inline and popup completions, checked fix-its, diagnostics)."""
    from lsp_server.launch import parse_tcp, serve

    if stdio and tcp:
        raise _fail("choose one of --stdio and --tcp")
    try:
        address = parse_tcp(tcp) if tcp else None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    serve(address)


def complete_command(
    file: Annotated[Path, typer.Argument(help="The file to complete in.")],
    line: Annotated[int, typer.Option("--line", "-l", help="1-based line of the cursor.")],
    col: Annotated[int, typer.Option("--col", "-c", help="1-based column of the cursor (in characters).")],
    model: Annotated[str, typer.Option(help="'nano', a checkpoint directory or a cached Hugging Face id.")] = "nano",
    url: Annotated[
        str | None, typer.Option(help="An OpenAI-compatible server; the local model is the fallback.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="MIMO_API_KEY", show_envvar=True, help="The server's API key (with --url).")
    ] = None,
    prompt_mode: Annotated[
        str, typer.Option(help="auto (the server's or the model family's), fim, prefix or chat.")
    ] = "auto",
    any_language: Annotated[
        bool,
        typer.Option(
            "--any-language",
            help="Complete even in a language the model's card does not list (as the editor's "
            '"languages" setting does).',
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object instead of the text.")] = False,
) -> None:
    """Complete FILE at a position with the editor's pipeline and print the completion. Like the editor, only in
    the languages the model was trained on (its mimo-card.json). On a terminal, control characters and escape
    sequences in the model's text are shown as escapes (`\\x1b`); piped, the text is exact."""
    from engine.api import EngineError
    from lsp_server.engine_host import open_engine_for
    from lsp_server.language_policy import ANY_LANGUAGE
    from lsp_server.settings import Settings
    from lsp_server.shell import (
        ShellError,
        cursor_offset,
        load_document,
        pipe_text,
        run_complete,
        terminal_json,
        terminal_text,
    )

    if prompt_mode not in ("auto", "fim", "prefix", "chat"):
        raise _fail(f"unknown --prompt-mode {prompt_mode!r}; use auto, fim, prefix or chat")
    settings = Settings()
    settings = replace(
        settings,
        engine=replace(settings.engine, model=model, url=url, api_key=api_key or None),
        completion=replace(settings.completion, prompt_mode=prompt_mode),
        languages={ANY_LANGUAGE: True} if any_language else {},
    )
    try:
        cursor_offset(load_document(file), line, col)  # bad input fails before the model loads
        engine = open_engine_for(settings.engine)
        result = run_complete(engine, file, line, col, settings)
    except (ShellError, EngineError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(terminal_json(json.dumps(asdict(result), ensure_ascii=False)))  # the same JSON value
    else:
        typer.echo(terminal_text(result.text) if sys.stdout.isatty() else pipe_text(result.text))


def stats_command(
    db: Annotated[Path | None, typer.Option(help="The telemetry database (default: the server's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Acceptance rate and latency percentiles per language, from the local telemetry database."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from lsp_server.telemetry import TelemetryError, default_path, read_stats

    path = db or default_path()
    if not path.exists():
        raise _fail(f"no telemetry database at {path}; completions are recorded once the language server runs")
    if not path.is_file():
        raise _fail(f"{path} is not a file; pass --db with the telemetry database (a SQLite file)")
    try:
        report = read_stats(path)
    except TelemetryError as exc:
        raise _fail(str(exc)) from None
    if report.skipped:
        typer.echo(f"note: skipped {report.skipped} rows whose latency is missing or not a number", err=True)
    if as_json:
        typer.echo(json.dumps([asdict(row) for row in report.languages]))
        return
    table = Table(title=Text(f"MiMo completions ({path})"))  # Text: names from the file are shown, not markup
    for heading in ("language", "shown", "accepted", "dismissed", "acceptance", "p50 ms", "p90 ms", "p99 ms"):
        table.add_column(heading, justify="left" if heading == "language" else "right")
    for row in report.languages:
        table.add_row(
            Text(_printable(row.language)), str(row.shown), str(row.accepted), str(row.dismissed), f"{row.acceptance_rate:.1%}",
            f"{row.latency_p50_ms:.0f}", f"{row.latency_p90_ms:.0f}", f"{row.latency_p99_ms:.0f}",
        )  # fmt: skip
    Console().print(table)


def _printable(name: str) -> str:
    """A name read from a file, with control characters (a terminal escape, a line break) shown as escapes."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in name)


def bench_lsp_command(
    rounds: Annotated[int, typer.Option(help="Timed requests for the server-overhead run.")] = 300,
    model_rounds: Annotated[int, typer.Option(help="Timed requests with the model (0 skips that run).")] = 30,
    model: Annotated[str, typer.Option(help="The model for the end-to-end run.")] = "nano",
    threads: Annotated[int, typer.Option(help="CPU threads for the model.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON on stdout.")] = False,
) -> None:
    """Latency of inline completions through the real server: overhead (instant engine), then end to end."""
    from lsp_server.bench import run_benchmarks

    if rounds < 1 or model_rounds < 0 or threads < 1:
        raise _fail("--rounds and --threads must be at least 1, --model-rounds at least 0")
    try:
        figures = run_benchmarks(rounds, model_rounds, model, threads)
    except RuntimeError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps([f.as_dict() for f in figures], indent=2))
        return
    for f in figures:
        typer.echo(
            f"{f.name}: p50 {f.p50_ms:.1f} ms, p90 {f.p90_ms:.1f} ms, p99 {f.p99_ms:.1f} ms, "
            f"server CPU {f.server_cpu_ms:.1f} ms/request "
            f"({f.requests} requests, {f.answered} answered, {f.engine_calls} engine calls)"
        )
