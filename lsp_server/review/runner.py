"""One review: deterministic checks on every changed file, then the model on the units the cache does not
already hold, packed into chunks reviewed in parallel. Plain data in (a Diff, an Engine, a ReviewConfig), a
ReviewReport out; engine errors other than an over-long prompt propagate to the caller's edge."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Protocol

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

from engine.api import Engine, GenerationRequest, Message, Overloaded, PromptTooLong, SamplingParams, collect
from lsp_server.review import prompts
from lsp_server.review.cache import ReviewCache
from lsp_server.review.checks import check_file
from lsp_server.review.context import ReviewUnit, estimate_tokens, pack_chunks, units_for_file
from lsp_server.review.diff import Diff, decode_text, file_contents
from lsp_server.review.findings import (
    FINDINGS_SCHEMA,
    Finding,
    FindingsParseError,
    anchor,
    parse_model_answer,
    sort_and_limit,
)

SMALL_MODEL_NOTE = (
    "mimo-nano is a small completion model: its review comments are not worth reading. The deterministic checks "
    "ran in full; for model review use a larger model, e.g. MiMo-7B-RL behind --engine URL."
)
_NANO_NAMES = frozenset({"nano", "mimo-nano"})
OVERLOAD_RETRIES = 3
MAX_OVERLOAD_WAIT_S = 10.0


@dataclass(frozen=True)
class ReviewConfig:
    max_prompt_tokens: int = 3000  # per chunk, before the model's own context length caps it further
    max_output_tokens: int = 768
    concurrency: int = 4
    max_findings: int | None = None
    cache_dir: Path | None = None  # None: no cache


@dataclass(frozen=True)
class ReviewReport:
    findings: tuple[Finding, ...]
    model: str | None  # None when no model reviewed (checks only)
    files: int
    units: int = 0  # changed hunks (or pieces of large ones) the model was asked about
    cached_units: int = 0
    chunks: int = 0
    notes: tuple[str, ...] = ()


class ProgressSink(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self) -> None: ...


def is_small_model(name: str | None) -> bool:
    """The shipped nano model (the native engine names a model after its folder, engine/assets/nano)."""
    return name in _NANO_NAMES


async def review_diff(
    diff: Diff, engine: Engine | None, config: ReviewConfig | None = None, progress: ProgressSink | None = None
) -> ReviewReport:
    config = config or ReviewConfig()
    after_texts: dict[str, str | None] = {}
    findings: list[Finding] = []
    for change in diff.files:
        before, after = file_contents(diff, change)
        after_texts[change.path] = decode_text(after)
        findings += check_file(change, before, after)
    if engine is None:
        shown, notes = _limited(findings, config.max_findings)
        return ReviewReport(shown, None, len(diff.files), notes=notes)
    model = engine.info().model
    budget = prompt_budget(engine, config)
    units = [u for c in diff.files for u in units_for_file(c, after_texts.get(c.path), budget)]
    cache = ReviewCache(config.cache_dir)
    to_review: list[ReviewUnit] = []
    for unit in units:
        hit = cache.get(unit, model)
        if hit is None:
            to_review.append(unit)
        else:
            findings += hit
    chunks = pack_chunks(to_review, budget)
    reviewer = _ChunkReviewer(engine, config, cache, model, after_texts, progress)
    findings += await reviewer.review_all(chunks)
    shown, limit_notes = _limited(findings, config.max_findings)
    notes = (*reviewer.notes, *limit_notes, *((SMALL_MODEL_NOTE,) if is_small_model(model) else ()))
    return ReviewReport(shown, model, len(diff.files), len(units), len(units) - len(to_review), len(chunks),
                        tuple(notes))  # fmt: skip


def prompt_budget(engine: Engine, config: ReviewConfig) -> int:
    """Tokens of diff and context per chunk: what the model's context leaves after the answer and the rules."""
    context = engine.info().context_length
    if context <= 0:  # unknown (a server that does not say): trust the configuration
        return config.max_prompt_tokens
    room = context - output_tokens(engine, config) - estimate_tokens(prompts.SYSTEM) - 32
    return max(64, min(config.max_prompt_tokens, room))


def output_tokens(engine: Engine, config: ReviewConfig) -> int:
    context = engine.info().context_length
    return config.max_output_tokens if context <= 0 else min(config.max_output_tokens, max(64, context // 4))


def _limited(findings: list[Finding], max_findings: int | None) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """Unique findings, most severe first, at most ``max_findings``, and a note saying how many were left out."""
    unique = _unique(findings)
    shown = sort_and_limit(unique, max_findings)
    left_out = len(unique) - len(shown)
    return tuple(shown), ((f"{left_out} more finding(s) left out by --max-findings",) if left_out else ())


def _unique(findings: list[Finding]) -> list[Finding]:
    seen, unique = set(), []
    for f in findings:
        key = (f.path, f.start_line, f.end_line, f.rule_id, f.message)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


@dataclass
class _ChunkReviewer:
    engine: Engine
    config: ReviewConfig
    cache: ReviewCache
    model: str
    after_texts: dict[str, str | None]
    progress: ProgressSink | None
    notes: list[str] = field(default_factory=list)

    async def review_all(self, chunks: list[list[ReviewUnit]]) -> list[Finding]:
        if self.progress is not None:
            self.progress.start(len(chunks))
        limit = asyncio.Semaphore(max(1, self.config.concurrency))

        async def one(chunk: list[ReviewUnit]) -> list[Finding]:
            async with limit:
                found = await self.review_chunk(chunk)
            if self.progress is not None:
                self.progress.advance()
            return found

        tasks = [asyncio.ensure_future(one(chunk)) for chunk in chunks]
        try:
            results = await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # after an engine error, stop the other requests instead of leaving them running
                task.cancel()
        return [finding for found in results for finding in found]

    async def review_chunk(self, units: list[ReviewUnit]) -> list[Finding]:
        """Asks the model (one retry on an unreadable answer), anchors the findings, caches them per unit."""
        try:
            items = await self._ask(units)
        except PromptTooLong:
            if len(units) > 1:  # our token estimate was short for this tokenizer: halve and retry
                middle = len(units) // 2
                return await self.review_chunk(units[:middle]) + await self.review_chunk(units[middle:])
            self.notes.append(f"{units[0].path}: a hunk was too long for the model's context and was not reviewed")
            return []
        if items is None:
            self.notes.append(f"the model's answer for {_describe(units)} was not valid JSON, even after a retry")
            return []
        found = anchor(items, units, self.after_texts)
        for unit in units:
            self.cache.put(unit, self.model, [f for f in found if _belongs(f, unit)])
        return found

    async def _ask(self, units: list[ReviewUnit]) -> list[dict] | None:
        messages = prompts.review_messages(units)
        answer = await self._generate(messages)
        try:
            return parse_model_answer(answer)
        except FindingsParseError as error:
            retry = prompts.retry_messages(messages, answer, str(error))
            try:
                return parse_model_answer(await self._generate(retry))
            except FindingsParseError:
                return None

    async def _generate(self, messages: tuple[Message, ...]) -> str:
        sampling = review_sampling(output_tokens(self.engine, self.config))
        request = GenerationRequest(messages=messages, sampling=sampling)
        for attempt in range(OVERLOAD_RETRIES + 1):
            try:
                return (await collect(self.engine, request)).texts[0]
            except Overloaded as busy:  # a busy server says when to come back; a review can wait that long
                if attempt == OVERLOAD_RETRIES:
                    raise
                await asyncio.sleep(min(busy.retry_after_s, MAX_OVERLOAD_WAIT_S))
        raise AssertionError("unreachable")


def review_sampling(max_tokens: int) -> SamplingParams:
    """Greedy decoding; with the answer's JSON schema where the engine API carries one (vLLM can then enforce
    it with structured decoding; other backends ignore it and the tolerant parser takes over)."""
    if "json_schema" in {f.name for f in fields(SamplingParams)}:
        return SamplingParams(max_tokens=max_tokens, temperature=0.0, json_schema=FINDINGS_SCHEMA)  # type: ignore[call-arg]
    return SamplingParams(max_tokens=max_tokens, temperature=0.0)


def _belongs(finding: Finding, unit: ReviewUnit) -> bool:
    return finding.path == unit.path and any(finding.start_line <= n <= finding.end_line for n in unit.added_lines)


def _describe(units: list[ReviewUnit]) -> str:
    paths = sorted({unit.path for unit in units})
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


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
