"""`mimo review`: flags in, a ReviewReport out, printed in the chosen format; exit 1 when findings reach
--fail-on, 2 for usage or engine errors, 0 otherwise."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the review modules load tree-sitter; `mimo --help` should not wait for that
    from lsp_server.review.runner import ReviewReport

DEFAULT_MODEL = "nano"
API_KEY_ENV = "MIMO_API_KEY"


class Format(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    rdjson = "rdjson"
    github = "github"


class FailOn(str, Enum):
    error = "error"
    warning = "warning"
    note = "note"
    never = "never"


class UsageError(Exception):
    """Flags that do not fit together; the message says which."""


@dataclass(frozen=True)
class ReviewOptions:
    path: Path = Path(".")
    base: str | None = None
    staged: bool = False
    diff_file: Path | None = None
    engine_url: str | None = None
    api_key: str | None = field(default=None, repr=False)  # sent to --engine servers as a bearer token; never printed
    model: str | None = None
    use_model: bool = True
    max_findings: int | None = None
    cache_dir: Path | None = None
    concurrency: int = 4
    max_prompt_tokens: int = 3000
    max_output_tokens: int = 768
    thinking_tokens: int = 2048


def exit_code(report: ReviewReport, fail_on: str) -> int:
    """1 when any finding reaches ``fail_on``: every finding counts, also those --max-findings does not show."""
    from lsp_server.review.findings import SEVERITY_RANK

    if fail_on == "never":
        return 0
    threshold = SEVERITY_RANK[fail_on]
    return 1 if any(f.rank >= threshold for f in report.all_findings) else 0


def diff_source(options: ReviewOptions):
    from lsp_server.review.sources import DiffSource

    chosen = [flag for flag, given in (("--base", options.base), ("--staged", options.staged),
                                       ("--diff", options.diff_file)) if given]  # fmt: skip
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} cannot be combined; pick one of --base REF, --staged, --diff FILE")
    if options.max_findings is not None and options.max_findings < 0:
        raise UsageError("--max-findings must be 0 or more")
    return DiffSource(base=options.base, staged=options.staged, diff_file=options.diff_file)


def open_review_engine(options: ReviewOptions):
    """The engine to review with, or None for checks only. A missing default model is not an error: the
    deterministic checks still run, with a note on stderr."""
    from engine.api import ModelNotFound

    if not options.use_model:
        return None
    if options.engine_url:
        from engine.remote import RemoteEngine

        return RemoteEngine(options.engine_url, model=options.model, api_key=options.api_key or None)
    from engine.registry import open_engine

    model = options.model or DEFAULT_MODEL
    print(f"mimo review: loading {model}", file=sys.stderr)
    try:
        return open_engine(model, backend="native")
    except ModelNotFound as error:
        if options.model:
            raise
        print(f"mimo review: {error}; running the deterministic checks only", file=sys.stderr)
        return None


async def run_review(options: ReviewOptions, progress=None):
    from lsp_server.review.runner import ReviewConfig, review_diff
    from lsp_server.review.sources import read_diff

    source = diff_source(options)
    diff = read_diff(source, options.path)
    config = ReviewConfig(max_prompt_tokens=options.max_prompt_tokens, max_output_tokens=options.max_output_tokens,
                          thinking_tokens=options.thinking_tokens, concurrency=options.concurrency,
                          max_findings=options.max_findings, cache_dir=options.cache_dir)  # fmt: skip
    engine = open_review_engine(options) if diff.files else None  # nothing readable: no model to load
    try:
        if engine is not None and hasattr(engine, "check"):
            await engine.check()  # a remote server: reachable? which model, what context length?
        return await review_diff(diff, engine, config, progress)
    finally:
        if engine is not None:
            await engine.aclose()


def register(groups: dict[str, typer.Typer]) -> None:
    @groups["root"].command("review")
    def review(
        path: Annotated[Path, typer.Argument(help="A file or folder of the repository to review.")] = Path("."),
        base: Annotated[str | None, typer.Option(help="Review changes since the merge base with REF.")] = None,
        staged: Annotated[bool, typer.Option("--staged", help="Review the staged changes.")] = False,
        diff: Annotated[Path | None, typer.Option("--diff", help="Review a unified diff read from FILE.")] = None,
        fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.text,
        fail_on: Annotated[FailOn, typer.Option(help="Exit 1 when a finding is this severe.")] = FailOn.error,
        engine: Annotated[str | None, typer.Option(help="URL of an OpenAI-compatible server.")] = None,
        api_key: Annotated[
            str | None,
            typer.Option(envvar=API_KEY_ENV, show_default=False, help=f"API key for --engine (or ${API_KEY_ENV})."),
        ] = None,
        model: Annotated[str | None, typer.Option(help="'nano', a checkpoint folder, or the server's model.")] = None,
        max_findings: Annotated[int | None, typer.Option(help="Report at most N, most severe first.")] = None,
        checks_only: Annotated[bool, typer.Option("--checks-only", help="Only the deterministic checks.")] = False,
        no_cache: Annotated[bool, typer.Option("--no-cache", help="Ask the model about every hunk.")] = False,
        cache_dir: Annotated[Path | None, typer.Option(help="Where model findings are cached.")] = None,
        concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once.")] = 4,
        max_prompt_tokens: Annotated[int, typer.Option(min=64, help="Diff and context per request.")] = 3000,
        max_output_tokens: Annotated[int, typer.Option(min=16, help="Longest answer per request.")] = 768,
        thinking_budget: Annotated[
            int, typer.Option(min=0, help="Tokens a reasoning model may think before answering.")
        ] = 2048,
    ) -> None:
        """Review a git diff with deterministic checks and a model: text, JSON, SARIF, rdjson, GitHub."""
        from lsp_server.review.cache import default_cache_dir

        options = ReviewOptions(path=path, base=base, staged=staged, diff_file=diff, engine_url=engine,
                                api_key=api_key, model=model, use_model=not checks_only, max_findings=max_findings,
                                concurrency=concurrency, cache_dir=None if no_cache else (cache_dir or default_cache_dir()),
                                max_prompt_tokens=max_prompt_tokens, max_output_tokens=max_output_tokens,
                                thinking_tokens=thinking_budget)  # fmt: skip
        raise typer.Exit(_run_and_print(options, fmt.value, fail_on.value))


def _run_and_print(options: ReviewOptions, fmt: str, fail_on: str) -> int:
    from engine.api import EngineError
    from lsp_server.review.diff import DiffError
    from lsp_server.review.report import render
    from lsp_server.review.runner import RichProgress

    progress = RichProgress()
    try:
        with progress.shown():
            report = asyncio.run(run_review(options, progress))
    except (UsageError, DiffError, EngineError) as error:
        print(f"mimo review: {error}", file=sys.stderr)
        return 2
    if fmt == "text" and sys.stdout.isatty():
        from rich.console import Console

        from lsp_server.review.report.text import print_text

        print_text(report, Console(emoji=False, highlight=False))  # quoted source is never markup or emoji
    else:
        sys.stdout.write(render(fmt, report))
        if fmt != "text":
            _print_reviewer(report)
    return exit_code(report, fail_on)


def _print_reviewer(report) -> None:
    """For machine formats, the human-facing lines go to stderr so stdout stays parseable. Names from the
    repository or the server are shown with their control characters escaped (no terminal escape sequences)."""
    from lsp_server.review.report.text import printable, shown_path

    reviewer = f"reviewed by {printable(report.model)}" if report.model else "deterministic checks only (no model)"
    print(f"mimo review: {reviewer}; {len(report.findings)} finding(s)", file=sys.stderr)
    for note in report.notes:
        print(f"mimo review: note: {printable(note)}", file=sys.stderr)
    for skipped in report.skipped:
        print(f"mimo review: skipped {shown_path(skipped.path)}: {skipped.reason}", file=sys.stderr)
