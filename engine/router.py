"""EngineRouter: a primary engine (usually a RemoteEngine on a GPU server) with a local fallback.

A request goes to the primary unless the router is in fallback. If the primary can't be reached, fails, or
sends nothing within the latency budget, the request is served by the fallback instead (nothing reached the
caller yet, so nothing is repeated) and the router stays in fallback, showing why in
`info().fallback_reason`. Meanwhile a background task probes the primary with a one-token request every
`retry_interval_s`, and switches back when it answers within the budget. A bad request (BadRequest,
PromptTooLong) is the caller's to fix and is raised, not retried elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

import anyio

from engine.api import BadRequest, Chunk, Engine, EngineError, EngineInfo, GenerationRequest, SamplingParams

log = logging.getLogger(__name__)

_PROBE = GenerationRequest(prompt="\n", sampling=SamplingParams(max_tokens=1), use_mtp=False)


@dataclass(frozen=True)
class RouterConfig:
    latency_budget_s: float | None = 3.0  # the primary's time to first chunk; None: wait as long as it takes
    retry_interval_s: float = 15.0  # how often the primary is probed while serving from the fallback


class EngineRouter:
    def __init__(
        self,
        primary: Engine,
        fallback: Engine,
        config: RouterConfig | None = None,
        on_change: Callable[[str | None], None] | None = None,
    ):
        """`on_change` gets the new `info().fallback_reason` text, or None when the primary is back."""
        self.primary, self.fallback = primary, fallback
        self.config = config or RouterConfig()
        self.on_change = on_change
        self._reason: str | None = None
        self._retry_task: asyncio.Task | None = None

    @property
    def fallback_reason(self) -> str | None:
        return None if self._reason is None else f"using local fallback: {self._reason}"

    def info(self) -> EngineInfo:
        active = self.primary if self._reason is None else self.fallback
        return replace(active.info(), fallback_reason=self.fallback_reason)

    async def check(self) -> EngineInfo:
        """Asks the primary what it serves, when it can say (a RemoteEngine reads the server's model card:
        context length, prompt mode); a primary that cannot be reached sends the router to the fallback at
        once, as a failed request would."""
        check = getattr(self.primary, "check", None)
        if check is not None and self._reason is None:
            try:
                await check()
            except BadRequest:
                raise
            except EngineError as exc:
                self._use_fallback(str(exc))
        return self.info()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        stream = await self._start_on_primary(request) if self._reason is None else None
        if stream is None:
            stream = self.fallback.generate(request)
        try:
            async for chunk in stream:
                yield chunk
        except EngineError as exc:
            if self._reason is None and not isinstance(exc, BadRequest):
                self._use_fallback(f"the primary failed mid-answer ({exc})")  # too late for this request
            raise
        finally:
            await stream.aclose()

    async def aclose(self) -> None:
        if self._retry_task is not None:
            self._retry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry_task
        await self.primary.aclose()
        await self.fallback.aclose()

    async def _start_on_primary(self, request: GenerationRequest) -> AsyncIterator[Chunk] | None:
        """The primary's stream with its first chunk put back in front, or None after switching to fallback."""
        stream = self.primary.generate(request)
        try:
            first = await _first_chunk(stream, self.config.latency_budget_s)
        except TimeoutError:
            await stream.aclose()
            self._use_fallback(f"the primary sent nothing within {self.config.latency_budget_s:g} s")
            return None
        except BadRequest:
            await stream.aclose()
            raise
        except EngineError as exc:
            await stream.aclose()
            self._use_fallback(str(exc))
            return None
        return _prepend(first, stream)

    def _use_fallback(self, reason: str) -> None:
        if self._reason is not None:
            return
        self._reason = reason
        log.warning("%s", self.fallback_reason)
        self._notify()
        if self._retry_task is None or self._retry_task.done():
            self._retry_task = asyncio.get_running_loop().create_task(self._retry_primary())

    async def _retry_primary(self) -> None:
        while self._reason is not None:
            await asyncio.sleep(self.config.retry_interval_s)
            if await self._primary_answers():
                self._reason = None
                log.warning("the primary engine answers again; leaving the local fallback")
                self._notify()

    async def _primary_answers(self) -> bool:
        stream = self.primary.generate(_PROBE)
        try:
            await _first_chunk(stream, self.config.latency_budget_s)
            return True
        except (TimeoutError, EngineError):
            return False
        finally:
            await stream.aclose()

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change(self.fallback_reason)


async def _first_chunk(stream: AsyncIterator[Chunk], budget_s: float | None) -> Chunk | None:
    with anyio.fail_after(budget_s):
        return await anext(stream, None)


async def _prepend(first: Chunk | None, rest: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    try:
        if first is not None:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()
