"""One completion: decide single or multi-line from the syntax at the cursor, reuse the cache when the user
typed into a shown suggestion, otherwise debounce, build the prompt, stream from the engine (stopping early
once the cleaned text is final) and clean it with the post-processing pipeline.

Cancellation: the caller cancels the task running ``CompletionService.complete``; the ``finally`` around the
stream closes it, so the engine stops generating for a request nobody waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from engine.api import Engine, EngineError, EngineInfo, FimParts, SamplingParams
from lsp_server import context as ctx
from lsp_server.documents import Document
from lsp_server.postprocess import FilterContext, is_final, run_pipeline
from lsp_server.postprocess.stop_sequences import STOP_TOKENS
from lsp_server.prompt_modes import build_request, chat_answer, chat_block_closed, completion_mode
from lsp_server.settings import CompletionSettings

_BLOCK_OPENERS = (":", "{", "then", "do", "=>", "->", "else")
_CLOSING_ONLY = set(")]}>\"'`;:,. \t")
MAX_LINE_CHARS = 120  # a single-line suggestion is not worth generating past this column
MIN_LINE_TOKENS = 16  # past that column, still room for a short continuation


@dataclass(frozen=True)
class Mode:
    multiline: bool


@dataclass(frozen=True)
class Completion:
    id: str
    text: str  # inserted at the cursor
    offset: int  # the cursor, in code points
    from_cache: bool
    latency_ms: float


@dataclass
class ServiceCounters:
    requests: int = 0
    engine_calls: int = 0
    cache_hits: int = 0
    stopped_early: int = 0
    cancelled: int = 0


def decide_mode(document: Document, offset: int) -> Mode | None:
    """Single line in the middle of a line, multi-line in an empty block body; None inside a word."""
    text = document.text
    after = text[offset : text.find("\n", offset) if "\n" in text[offset:] else len(text)]
    if after[:1].isalnum() or after[:1] == "_":
        return None  # completing inside an identifier only gets in the way
    if set(after) - _CLOSING_ONLY:
        return Mode(multiline=False)
    line_start = text.rfind("\n", 0, offset) + 1
    before = text[line_start:offset]
    row = document.position_at(offset).line
    if before.strip():
        return Mode(multiline=_opens_block(document, offset, row, before))
    previous = _previous_code_row(document, row)
    if previous is None:
        return Mode(multiline=True)  # an empty file: write the first lines
    opener_line = document.line(previous)
    opens = _opens_block(document, offset, previous, opener_line)
    return Mode(multiline=opens and _body_is_empty(document, row, opener_line))


def _previous_code_row(document: Document, row: int) -> int | None:
    for candidate in range(row - 1, -1, -1):
        if document.line(candidate).strip():
            return candidate
    return None


def _opens_block(document: Document, offset: int, row: int, line: str) -> bool:
    """True when the line (``row``, near the cursor at ``offset``) ends with a block opener that is code (per
    the tree), not a string or comment."""
    stripped = line.rstrip()
    if not stripped.endswith(_BLOCK_OPENERS):
        return False
    near = document.syntax_near(offset)
    if near is None:
        return True
    node = near.node_at(row, len(stripped.encode("utf-8")) - 1)
    return node is not None and "string" not in node.type and "comment" not in node.type


def _body_is_empty(document: Document, row: int, opener_line: str) -> bool:
    """No line after the cursor is indented deeper than the opener: the block has no body yet."""
    opener_indent = len(opener_line) - len(opener_line.lstrip())
    for candidate in range(row + 1, document.line_count):
        line = document.line(candidate)
        if line.strip():
            return len(line) - len(line.lstrip()) <= opener_indent
    return True


@dataclass(frozen=True)
class CacheHit:
    text: str  # what is left to insert ("" when the model had nothing to offer here)
    completion_id: str  # the id of the suggestion first shown, so typing into it and accepting counts once


@dataclass(frozen=True)
class _CacheEntry:
    prefix: str
    suffix: str
    hit: CacheHit


class CompletionCache:
    """An LRU of cleaned completions by (document, prefix, suffix) that also serves typed-ahead requests:
    when the new prefix is an old prefix plus the start of its suggestion, the rest of it is the answer.

    Entries are keyed by the lengths of prefix and suffix, not by the texts: hashing a big file's prefix on every
    request costs more than the rest of the lookup. Of two texts with the same lengths the newest is kept."""

    def __init__(self, capacity: int = 128):
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, int, int], _CacheEntry] = OrderedDict()

    def store(self, uri: str, prefix: str, suffix: str, text: str, completion_id: str = "") -> None:
        key = (uri, len(prefix), len(suffix))
        self._entries[key] = _CacheEntry(prefix, suffix, CacheHit(text, completion_id))
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def lookup(self, uri: str, prefix: str, suffix: str) -> CacheHit | None:
        prefix_length, suffix_length = len(prefix), len(suffix)
        for key, entry in reversed(self._entries.items()):
            entry_uri, entry_prefix_length, entry_suffix_length = key
            text, typed = entry.hit.text, prefix_length - entry_prefix_length
            if entry_uri != uri or entry_suffix_length != suffix_length or typed < 0 or typed > len(text):
                continue  # cheap checks first: prefixes of big files are long
            if (typed < len(text) or typed == 0) and entry.suffix == suffix and prefix.startswith(entry.prefix):
                if text.startswith(prefix[entry_prefix_length:]):
                    self._entries.move_to_end(key)
                    return CacheHit(text[typed:], entry.hit.completion_id)
        return None


@dataclass
class Debouncer:
    """Waits longer while the user types fast (they are not done yet) and not at all when asked explicitly:
    delay = clamp(min, max, 1.5 x the typical gap between keystrokes)."""

    min_s: float
    max_s: float
    _last: dict[str, float] = field(default_factory=dict)
    _gap_s: float = 0.0

    def delay(self, uri: str, now: float, invoked: bool) -> float:
        last = self._last.get(uri)
        self._last[uri] = now
        if last is not None and now - last < 2.0:  # gaps inside a typing burst
            gap = now - last
            self._gap_s = gap if self._gap_s == 0 else 0.7 * self._gap_s + 0.3 * gap
        if invoked:
            return 0.0
        return min(self.max_s, max(self.min_s, 1.5 * self._gap_s))


class CompletionService:
    def __init__(self, settings: CompletionSettings):
        self.settings = settings
        self.cache = CompletionCache()
        self.debouncer = Debouncer(settings.debounce_ms / 1000, settings.max_debounce_ms / 1000)
        self.counters = ServiceCounters()
        self._checked_engine: Engine | None = None  # the engine whose server was asked for its prompt mode

    def configure(self, settings: CompletionSettings) -> None:
        self.settings = settings
        self.debouncer.min_s, self.debouncer.max_s = settings.debounce_ms / 1000, settings.max_debounce_ms / 1000

    def forget(self) -> None:
        """Drops the cached completions: they are the previous engine's or settings' answers (a fallback's empty
        answer would otherwise outlive the API key that brings the real server back)."""
        self.cache = CompletionCache(self.cache.capacity)

    async def complete(
        self,
        get_engine: Callable[[], Awaitable[Engine | None]],
        document: Document,
        offset: int,
        sources: list[ctx.Source],
        invoked: bool = False,
    ) -> Completion | None:
        """The cleaned completion at ``offset``, or None. ``get_engine`` (which may wait for the model to load)
        is called only on a cache miss."""
        started = time.perf_counter()
        self.counters.requests += 1
        mode = decide_mode(document, offset)
        if mode is None:
            return None
        prefix, suffix = document.text[:offset], document.text[offset:]
        cached = self.cache.lookup(document.uri, prefix, suffix)
        if cached is not None:
            self.counters.cache_hits += 1
            return _completion(cached.text, offset, True, started, cached.completion_id) if cached.text else None
        text_asked = document.text  # compared by identity: any edit makes a new string
        await asyncio.sleep(self.debouncer.delay(document.uri, started, invoked))
        engine = await get_engine()
        if engine is not None and engine is not self._checked_engine:
            await _ask_who_it_is(engine)
            self._checked_engine = engine
        if engine is None or document.text is not text_asked:
            return None  # no model, or the user typed meanwhile: this position is stale
        syntax = document.syntax_near(offset)
        filter_context = FilterContext(
            prefix, suffix, document.language, mode.multiline, self.settings.max_lines, syntax, document.language_id
        )
        info = engine.info()
        fim = ctx.build_fim(document, offset, sources, context_budget(self.settings, info))
        mode = completion_mode(self.settings.prompt_mode, info)
        raw = await self._stream(engine, mode, fim, filter_context)
        if mode == "chat":  # the reply's code block, checked against the chat contract (prompt_modes)
            raw = chat_answer(raw, fim) or ""
        cleaned = run_pipeline(raw, filter_context) or ""
        completion = _completion(cleaned, offset, False, started)
        self.cache.store(document.uri, prefix, suffix, cleaned, completion.id)
        return completion if cleaned else None

    async def _stream(self, engine: Engine, mode: str, fim: FimParts, filter_context: FilterContext) -> str:
        """The raw text the model writes, stopped as soon as more of it could not change the result."""
        sampling = SamplingParams(max_tokens=token_budget(filter_context, self.settings), stop=STOP_TOKENS)
        request = build_request(
            mode, fim, sampling, filter_context.language, filter_context.multiline, self.settings.max_lines
        )
        done = chat_block_closed if mode == "chat" else lambda text: is_final(text, filter_context)
        self.counters.engine_calls += 1
        stream = engine.generate(request)
        text = ""
        try:
            async for chunk in stream:
                text += chunk.text
                if done(text):
                    self.counters.stopped_early += 1
                    break
        except asyncio.CancelledError:
            self.counters.cancelled += 1
            raise
        finally:
            await stream.aclose()  # stops the engine for an early stop or a cancelled request
        return text


async def _ask_who_it_is(engine: Engine) -> None:
    """A remote engine (or a router in front of one) learns the server's advertised prompt mode from its model
    card before the first prompt is built; a server that cannot be reached shows up on the request itself."""
    check = getattr(engine, "check", None)
    if check is not None:
        with contextlib.suppress(EngineError):
            await check()


# Prompt budgets when `completion.contextTokens` is 0 (auto). A model running on this machine's CPU spends most
# of a completion's latency reading the prompt: with mimo-nano on one thread, single-line completions took a
# median 750 ms end to end at a 1,536-token budget, 151 ms at 384 and 126 ms at 256 (`mimo bench lsp`), for
# held-out edit similarity 0.39 at ~384 tokens and 0.37 at ~256. A GPU or remote server reads 1,536 tokens in
# a few milliseconds.
LOCAL_CPU_CONTEXT_TOKENS = 256
SERVER_CONTEXT_TOKENS = 1536
LOCAL_CPU_BACKENDS = ("native", "vllm")


def context_budget(settings: CompletionSettings, engine: EngineInfo) -> int:
    """The prompt budget in tokens: the setting when it is given, else one sized for where the model runs."""
    if settings.context_tokens:
        return settings.context_tokens
    on_local_cpu = engine.backend in LOCAL_CPU_BACKENDS and engine.device == "cpu"
    return LOCAL_CPU_CONTEXT_TOKENS if on_local_cpu else SERVER_CONTEXT_TOKENS


def token_budget(context: FilterContext, settings: CompletionSettings) -> int:
    """The tokens to ask for. A single line gets what the rest of its line can hold (up to MAX_LINE_CHARS,
    never more than the setting): a small model that seldom writes a line break would otherwise spend the whole
    limit on one line, at milliseconds a token on a CPU."""
    if context.multiline:
        return settings.multi_line_tokens
    room = MAX_LINE_CHARS - len(context.line_before.expandtabs(4))
    return min(settings.single_line_tokens, max(MIN_LINE_TOKENS, math.ceil(room / ctx.CHARS_PER_TOKEN)))


def _completion(text: str, offset: int, from_cache: bool, started: float, completion_id: str = "") -> Completion:
    latency_ms = (time.perf_counter() - started) * 1000
    return Completion(completion_id or uuid.uuid4().hex, text, offset, from_cache, latency_ms)
