"""One review: deterministic checks on every changed file, then the model on the units the cache does not
already hold, packed into chunks reviewed in parallel. Plain data in (a Diff, an Engine, a ReviewConfig), a
ReviewReport out; engine errors other than an over-long prompt propagate to the caller's edge. Files that must
not be read (links out of the repository, special files, oversized ones) are listed in the report, not read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from engine.api import Engine
from lsp_server.review.cache import ReviewCache
from lsp_server.review.checks import check_file
from lsp_server.review.contents import file_contents
from lsp_server.review.context import ReviewUnit, pack_chunks, units_for_file
from lsp_server.review.diff import Diff, FileChange, Skipped, decode_text
from lsp_server.review.findings import Finding, sort_and_limit
from lsp_server.review.model_review import ChunkReviewer, ModelBudget, ProgressSink, prompt_budget
from lsp_server.safe_files import FileTooLarge, UnsafePath

SMALL_MODEL_NOTE = (
    "mimo-nano is a small completion model: its review comments are not worth reading. The deterministic checks "
    "ran in full; for model review use a larger model, e.g. MiMo-7B-RL behind --engine URL."
)
_NANO_NAMES = frozenset({"nano", "mimo-nano"})


@dataclass(frozen=True)
class ReviewConfig:
    max_prompt_tokens: int = 3000  # per chunk, before the model's own context length caps it further
    max_output_tokens: int = 768  # the JSON answer
    thinking_tokens: int = 2048  # room for a reasoning model's thinking before the answer
    concurrency: int = 4
    max_findings: int | None = None  # what is shown; the exit-code gate always sees every finding
    cache_dir: Path | None = None  # None: no cache

    @property
    def model_budget(self) -> ModelBudget:
        return ModelBudget(self.max_output_tokens, self.thinking_tokens)


@dataclass(frozen=True)
class ReviewReport:
    findings: tuple[Finding, ...]  # shown: most severe first, at most --max-findings
    model: str | None  # None when no model reviewed (checks only)
    files: int  # changed files, the skipped ones included
    units: int = 0  # changed hunks (or pieces of large ones) the model was asked about
    cached_units: int = 0
    chunks: int = 0
    notes: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()  # changed paths that were not read, and why
    left_out: tuple[Finding, ...] = ()  # found but not shown because of --max-findings

    @property
    def all_findings(self) -> tuple[Finding, ...]:
        return self.findings + self.left_out


def is_small_model(name: str | None) -> bool:
    """The shipped nano model (the native engine names a model after its folder, engine/assets/nano)."""
    return name in _NANO_NAMES


async def review_diff(
    diff: Diff, engine: Engine | None, config: ReviewConfig | None = None, progress: ProgressSink | None = None
) -> ReviewReport:
    config = config or ReviewConfig()
    changes, after_texts, findings, skipped = _check_files(diff)
    files = len(diff.files) + len(diff.skipped)
    if engine is None:
        return _report(findings, None, files, config, skipped=skipped)
    model = engine.info().model
    # nano is a completion model that never thinks: room to think would only let it ramble longer.
    model_budget = replace(config.model_budget, thinking_tokens=0) if is_small_model(model) else config.model_budget
    budget = prompt_budget(engine, model_budget, config.max_prompt_tokens)
    units = [u for c in changes for u in units_for_file(c, after_texts.get(c.path), budget)]
    cache = ReviewCache(config.cache_dir)
    to_review: list[ReviewUnit] = []
    for unit in units:
        hit = cache.get(unit, model)
        if hit is None:
            to_review.append(unit)
        else:
            findings += hit
    chunks = pack_chunks(to_review, budget)
    reviewer = ChunkReviewer(engine, model_budget, config.concurrency, cache, model, after_texts, progress)
    findings += await reviewer.review_all(chunks)
    notes = (*reviewer.notes, *((SMALL_MODEL_NOTE,) if is_small_model(model) else ()))
    return _report(findings, model, files, config, len(units), len(units) - len(to_review), len(chunks), notes,
                   skipped)  # fmt: skip


def _check_files(diff: Diff) -> tuple[list[FileChange], dict[str, str | None], list[Finding], list[Skipped]]:
    """Reads each changed file (safely) and runs the checks: the files the model may see, their new texts, the
    checks' findings, and every path set aside (by the diff's screen, or here when reading was refused)."""
    kept: list[FileChange] = []
    after_texts: dict[str, str | None] = {}
    findings: list[Finding] = []
    skipped = list(diff.skipped)
    for change in diff.files:
        try:
            before, after = file_contents(diff, change)
        except UnsafePath as unsafe:
            skipped.append(Skipped(change.path, unsafe.reason, refused=not isinstance(unsafe, FileTooLarge)))
            continue
        found = check_file(change, before, after)
        findings += found
        if change.is_binary:
            if not found and change.status != "deleted":
                skipped.append(Skipped(change.path, "a binary file"))
            continue
        kept.append(change)
        after_texts[change.path] = decode_text(after)
    return kept, after_texts, findings, skipped


def _report(findings: list[Finding], model: str | None, files: int, config: ReviewConfig, units: int = 0,
            cached: int = 0, chunks: int = 0, notes: tuple[str, ...] = (),
            skipped: list[Skipped] | None = None) -> ReviewReport:  # fmt: skip
    """Unique findings, most severe first; at most ``max_findings`` shown and the rest kept for the gate."""
    unique = _unique(findings)
    ordered = sort_and_limit(unique, None)
    limit = len(ordered) if config.max_findings is None else config.max_findings
    shown, left_out = tuple(ordered[:limit]), tuple(ordered[limit:])
    if left_out:
        notes = (*notes, f"{len(left_out)} more finding(s) left out by --max-findings")
    return ReviewReport(shown, model, files, units, cached, chunks, tuple(notes), tuple(skipped or ()), left_out)


def _unique(findings: list[Finding]) -> list[Finding]:
    seen, unique = set(), []
    for f in findings:
        key = (f.path, f.start_line, f.end_line, f.rule_id, f.message)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.2f} chunks/s" if task.speed else "- chunks/s", style="progress.data.speed")


class RichProgress:
    """A progress bar with rates on stderr, for the command line."""

    def __init__(self, description: str = "reviewing"):
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn(), TimeElapsedColumn(),
            console=Console(stderr=True),
        )  # fmt: skip
        self._description = description
        self._task: TaskID | None = None

    def start(self, total: int) -> None:
        if total > 0:  # nothing to show when every hunk came from the cache
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=total)

    def advance(self) -> None:
        if self._task is not None:
            self._progress.advance(self._task)

    @contextmanager
    def shown(self) -> Iterator[RichProgress]:
        try:
            yield self
        finally:
            if self._task is not None:
                self._progress.stop()
