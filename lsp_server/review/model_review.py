"""Asking the model about chunks of review units: in parallel, with one retry for an unreadable answer, halving
over-long prompts, waiting out a busy server, and with a reasoning model's thinking stripped and budgeted
(lsp_server.reasoning): thinking is never parsed for findings, never fed back, and a model that thinks past its
budget is stopped and asked once more to answer directly."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from engine.api import Engine, GenerationRequest, Message, Overloaded, PromptTooLong, SamplingParams
from lsp_server.reasoning import ModelAnswer, generate_answer
from lsp_server.review import prompts
from lsp_server.review.cache import ReviewCache
from lsp_server.review.context import ReviewUnit, estimate_tokens
from lsp_server.review.findings import FINDINGS_SCHEMA, Finding, FindingsParseError, anchor, parse_model_answer

OVERLOAD_RETRIES = 3
MAX_OVERLOAD_WAIT_S = 10.0
THINKING_CHARS_PER_TOKEN = 4  # prose runs about 4 characters a token; the budget is in tokens


@dataclass(frozen=True)
class ModelBudget:
    answer_tokens: int = 768  # the JSON answer
    thinking_tokens: int = 2048  # a reasoning model's thinking before it; 0 asks for no room to think

    @property
    def thinking_chars(self) -> int:
        return self.thinking_tokens * THINKING_CHARS_PER_TOKEN


class ProgressSink(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self) -> None: ...


class _Unanswered(Exception):
    """The model gave no answer: its thinking outgrew the budget, or max tokens ended it mid-thought."""


def output_tokens(engine: Engine, budget: ModelBudget) -> int:
    """max_tokens per request: the answer plus room to think, at most a quarter of a known context."""
    wanted = budget.answer_tokens + budget.thinking_tokens
    context = engine.info().context_length
    return wanted if context <= 0 else min(wanted, max(64, context // 4))


def prompt_budget(engine: Engine, budget: ModelBudget, max_prompt_tokens: int) -> int:
    """Tokens of diff and context per chunk: what the model's context leaves after the answer and the rules."""
    context = engine.info().context_length
    if context <= 0:  # unknown (a server that does not say): trust the configuration
        return max_prompt_tokens
    room = context - output_tokens(engine, budget) - estimate_tokens(prompts.SYSTEM) - 32
    return max(64, min(max_prompt_tokens, room))


def review_sampling(max_tokens: int) -> SamplingParams:
    """Greedy decoding with the answer's JSON schema: vLLM enforces it with structured decoding (after the
    thinking, when it runs with a reasoning parser); other backends ignore it and the tolerant parser reads."""
    return SamplingParams(max_tokens=max_tokens, temperature=0.0, json_schema=FINDINGS_SCHEMA)


@dataclass
class ChunkReviewer:
    engine: Engine
    budget: ModelBudget
    concurrency: int
    cache: ReviewCache
    model: str
    after_texts: dict[str, str | None]
    progress: ProgressSink | None
    notes: list[str] = field(default_factory=list)

    async def review_all(self, chunks: list[list[ReviewUnit]]) -> list[Finding]:
        if self.progress is not None:
            self.progress.start(len(chunks))
        limit = asyncio.Semaphore(max(1, self.concurrency))

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
        except _Unanswered:
            self.notes.append(
                f"the model's thinking about {_describe(units)} did not end within its budget "
                f"({self.budget.thinking_tokens} tokens), even after a retry; raise --thinking-budget"
            )
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
        first = await self._generate(messages)
        try:
            if _unanswered(first):
                raise _Unanswered
            return parse_model_answer(first.answer)
        except (FindingsParseError, _Unanswered) as problem:
            error = prompts.THOUGHT_TOO_LONG if isinstance(problem, _Unanswered) else str(problem)
            retry = await self._generate(prompts.retry_messages(messages, first.answer, error))
            if _unanswered(retry):
                if isinstance(problem, _Unanswered):
                    raise _Unanswered from None
                return None
            try:
                return parse_model_answer(retry.answer)
            except FindingsParseError:
                return None

    async def _generate(self, messages: tuple[Message, ...]) -> ModelAnswer:
        sampling = review_sampling(output_tokens(self.engine, self.budget))
        request = GenerationRequest(messages=messages, sampling=sampling)
        for attempt in range(OVERLOAD_RETRIES + 1):
            try:
                return await generate_answer(self.engine, request, self.budget.thinking_chars)
            except Overloaded as busy:  # a busy server says when to come back; a review can wait that long
                if attempt == OVERLOAD_RETRIES:
                    raise
                await asyncio.sleep(min(busy.retry_after_s, MAX_OVERLOAD_WAIT_S))
        raise AssertionError("unreachable")


def _unanswered(answer: ModelAnswer) -> bool:
    """No answer at all: the thinking was cut (by our budget or by max tokens), or a server with a reasoning
    parser spent every token on thinking it kept to itself (empty text, stopped by length)."""
    return answer.over_budget or answer.unterminated or (not answer.answer and answer.finish_reason == "length")


def _belongs(finding: Finding, unit: ReviewUnit) -> bool:
    return finding.path == unit.path and any(finding.start_line <= n <= finding.end_line for n in unit.added_lines)


def _describe(units: list[ReviewUnit]) -> str:
    paths = sorted({unit.path for unit in units})
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
