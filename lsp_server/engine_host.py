"""Opens the engine the settings ask for, once, off the event loop, and hands it to every feature.

Default: the in-process model (mimo-nano). With ``engine.url``: a remote OpenAI-compatible server behind the
engine router, with the local model as its fallback. With backend "instant": the fixed-answer engine.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from engine.api import Engine, EngineError
from lsp_server.instant_engine import InstantEngine
from lsp_server.settings import EngineSettings

log = logging.getLogger(__name__)


def open_engine_for(
    settings: EngineSettings, on_fallback: Callable[[str | None], None] = lambda reason: None
) -> Engine:
    """Builds the engine (blocking: loads weights). Raises EngineError with a message a person can act on.
    ``on_fallback`` hears the router's fallback reason each time it changes (None: the primary is back)."""
    if settings.backend == "instant":
        return InstantEngine(settings.instant_text, delay_s=settings.instant_delay_ms / 1000)
    from engine.registry import open_engine

    options = {}
    if settings.backend == "native":
        # Completions while typing share all but their last few prompt tokens: reuse the trunk's work on them.
        options = {"prompt_cache": True} | ({"threads": settings.threads} if settings.threads else {})
    local = open_engine(settings.model, backend=settings.backend, **options)
    if not settings.url:
        return local
    from engine.remote import API_KEY_ENV, RemoteEngine
    from engine.router import EngineRouter

    api_key = settings.api_key or os.environ.get(API_KEY_ENV) or None
    remote = RemoteEngine(
        settings.url, model=settings.remote_model, fim_template=settings.remote_fim_template, api_key=api_key
    )
    return EngineRouter(remote, local, on_change=on_fallback)


class EngineHost:
    """The one engine of the server; ``get()`` waits while it loads, ``reload()`` follows new settings."""

    def __init__(
        self,
        settings: EngineSettings,
        on_loading: Callable[[bool], None] = lambda loading: None,
        on_error: Callable[[str], None] = lambda message: None,
        on_fallback: Callable[[str | None], None] = lambda reason: None,
        opener: Callable[..., Engine] = open_engine_for,
    ):
        self.settings = settings
        self._on_loading = on_loading
        self._on_error = on_error
        self._opener = opener
        self._on_fallback = on_fallback
        self._task: asyncio.Task[Engine | None] | None = None
        self.error: str | None = None

    def configure(self, settings: EngineSettings) -> None:
        """Sets the settings before the first load (afterwards, use ``reload``)."""
        if self._task is None:
            self.settings = settings

    def start(self) -> None:
        if self._task is None:
            self._on_loading(True)
            self._task = asyncio.ensure_future(self._load(self.settings))
            self._task.add_done_callback(self._loaded)

    def _loaded(self, task: asyncio.Task[Engine | None]) -> None:
        if task is not self._task:
            return  # replaced by a reload meanwhile
        self._on_loading(False)
        if self.error:
            self._on_error(self.error)

    async def get(self) -> Engine | None:
        """The engine, or None when it failed to open (the error was shown once)."""
        self.start()
        assert self._task is not None
        return await asyncio.shield(self._task)

    def current(self) -> Engine | None:
        task = self._task
        if task is None or not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return task.result()

    async def reload(self, settings: EngineSettings) -> None:
        if settings == self.settings and self._task is not None:
            return
        old = self._task
        self.settings, self._task, self.error = settings, None, None
        self.start()
        if old is not None:
            engine = await old
            if engine is not None:
                await engine.aclose()

    async def close(self) -> None:
        engine = self.current()
        if engine is not None:
            await engine.aclose()

    async def _load(self, settings: EngineSettings) -> Engine | None:
        try:
            loop = asyncio.get_running_loop()
            on_fallback = lambda reason: loop.call_soon_threadsafe(self._on_fallback, reason)  # noqa: E731
            return await asyncio.to_thread(self._opener, settings, on_fallback)
        except EngineError as exc:
            self.error = str(exc)
        except Exception as exc:  # a broken checkpoint must not take the server down
            log.exception("opening the engine failed")
            self.error = f"could not open model {settings.model!r}: {exc}"
        return None
