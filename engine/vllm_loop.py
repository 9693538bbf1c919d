"""One thread that owns a vLLM ``LLMEngine``: it adds and aborts requests between steps and routes each step's
outputs to the asyncio queue of the request they belong to.

``LLMEngine`` is not thread-safe, so every call into it happens on this thread; other threads only enqueue
commands. An abort therefore takes effect before the next step, so a cancelled request stops using compute
within one decode step.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from engine.api import BadRequest, EngineUnavailable

Sink = Callable[[Any], None]  # receives a vllm RequestOutput or an exception to raise in the consumer

# In-process engines share vLLM's process-wide distributed state, and vLLM's shutdown (also run when an engine
# is garbage-collected) tears it down, so the others would fail on their next step. A closed in-process engine
# is therefore kept until the last one closes, and then they all shut down together.
_open_in_process: set[EngineLoop] = set()
_closed_in_process: list[Any] = []


class EngineLoop:
    def __init__(self, llm_engine):
        from vllm.v1.engine.core_client import InprocClient

        self._engine = llm_engine
        if isinstance(llm_engine.engine_core, InprocClient):
            _open_in_process.add(self)
        self._commands: queue.SimpleQueue[Callable[[], bool]] = queue.SimpleQueue()
        # Held while enqueueing, so no request can be queued behind the stop command (it would never be served).
        self._enqueue = threading.Lock()
        self._stopping = False
        self._sinks: dict[str, Sink] = {}
        self._thread = threading.Thread(target=self._run, name="vllm-engine-loop", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, engine_args) -> EngineLoop:
        """Builds the vLLM engine. Its core runs in this process when ``VLLM_ENABLE_V1_MULTIPROCESSING=0``,
        else in a spawned one (vLLM's default; on CPU vLLM decides this from the variable alone)."""
        from vllm.v1.engine.llm_engine import LLMEngine

        return cls(LLMEngine.from_engine_args(engine_args))

    @property
    def max_model_len(self) -> int:
        return self._engine.model_config.max_model_len

    @property
    def vllm_config(self):
        return self._engine.vllm_config

    @property
    def device(self) -> str:
        return self._engine.vllm_config.device_config.device_type

    def unfinished_requests(self) -> int:
        """vLLM's count of requests not yet finished or aborted (a length read, safe from any thread)."""
        return self._engine.get_num_unfinished_requests()

    def submit(self, request_id: str, prompt: dict, params) -> AsyncIterator[Any]:
        """Queues a request; returns its outputs (vllm ``RequestOutput`` deltas) as they come, until finished."""
        outputs: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def sink(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(outputs.put_nowait, item)
            except RuntimeError:  # the consumer's event loop has closed; nobody is listening
                pass

        with self._enqueue:
            if self._stopping or not self._thread.is_alive():
                raise EngineUnavailable("the vLLM engine has stopped; open a new one")
            self._commands.put(lambda: self._add(request_id, prompt, params, sink))
        return _drain(outputs)

    def abort(self, request_id: str) -> None:
        self._commands.put(lambda: self._abort(request_id))

    def stop(self) -> None:
        """Fails every open request, shuts the engine down and waits for the thread to end (idempotent)."""
        with self._enqueue:
            if not self._stopping:
                self._stopping = True
                self._commands.put(lambda: False)
        self._thread.join()

    def _run(self) -> None:
        running = True
        while running:
            idle = not self._engine.has_unfinished_requests()
            for command in self._pending(block=idle):
                if command() is False:  # stop; the requests queued before it are failed by _shutdown
                    running = False
            if running and self._engine.has_unfinished_requests():
                running = self._step()
        self._shutdown()

    def _pending(self, *, block: bool) -> list[Callable[[], bool]]:
        """The queued commands: waits for one when the engine has nothing to do, never otherwise."""
        commands = [self._commands.get()] if block else []
        while not self._commands.empty():
            commands.append(self._commands.get_nowait())
        return commands

    def _add(self, request_id: str, prompt: dict, params, sink: Sink) -> bool:
        from vllm.exceptions import VLLMClientError

        try:
            self._engine.add_request(request_id, prompt, params)
        except (ValueError, TypeError, VLLMClientError) as error:  # vLLM's validation of the request
            sink(BadRequest(str(error)))
        else:
            self._sinks[request_id] = sink
        return True

    def _abort(self, request_id: str) -> bool:
        if self._sinks.pop(request_id, None) is not None:
            self._engine.abort_request([request_id])
        return True

    def _step(self) -> bool:
        """Runs one engine step and delivers its outputs; False when the engine failed and the loop must end."""
        try:
            outputs = self._engine.step()
        except Exception as error:
            self._fail_all(EngineUnavailable(f"vLLM failed: {error}"))
            return False
        for output in outputs:
            sink = self._sinks.get(output.request_id)
            if sink is None:
                continue
            sink(output)
            if output.finished:
                del self._sinks[output.request_id]
        return True

    def _fail_all(self, error: Exception) -> None:
        if self._sinks:
            with contextlib.suppress(Exception):  # a broken engine may fail this too; the waiters come first
                self._engine.abort_request(list(self._sinks))
        for sink in self._sinks.values():
            sink(error)
        self._sinks.clear()

    def _shutdown(self) -> None:
        self._fail_all(EngineUnavailable("the vLLM engine was closed"))
        if self not in _open_in_process:
            self._engine.engine_core.shutdown()
            return
        _open_in_process.discard(self)
        _closed_in_process.append(self._engine)
        if not _open_in_process:
            while _closed_in_process:
                _closed_in_process.pop().engine_core.shutdown()


async def _drain(outputs: asyncio.Queue) -> AsyncIterator[Any]:
    while True:
        item = await outputs.get()
        if isinstance(item, BaseException):
            raise item
        yield item
        if item.finished:
            return
