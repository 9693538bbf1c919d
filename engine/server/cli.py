"""`mimo serve`: the OpenAI-compatible server on one model.

Why the vLLM backend runs in-process behind our server (engine.vllm_engine.VllmEngine) instead of launching
`vllm serve` with `--speculative-config '{"method": "mtp", "num_speculative_tokens": 1}'`:
- one contract for every backend: vLLM's OpenAI server rejects the `suffix` field, so fill-in-the-middle (what
  the editor sends) would need client-side templates; ours renders `suffix` with the template detected from
  the tokenizer, whatever the backend;
- the same errors (400 naming both lengths, 503 with Retry-After from our queue), the same /metrics names
  (MTP acceptance included) and the same `timings` in responses, so clients and dashboards don't care;
- one process to supervise, started and stopped by one command.
Anyone who prefers vLLM's own server can still run `vllm serve` and point the client (engine.remote) at it.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from engine.api import DEFAULT_DRAFT_TOKENS, MAX_DRAFT_TOKENS, EngineError

BACKENDS = ("auto", "native", "vllm")
DEFAULT_PORT = 8000  # vLLM's and most OpenAI-compatible servers' default, so clients find us there


@dataclass(frozen=True)
class ServeSettings:
    model: str
    backend: str
    host: str
    port: int
    queue_size: int
    served_model_name: str | None
    fim_template: str | None
    device: str | None
    dtype: str | None
    draft_tokens: int = DEFAULT_DRAFT_TOKENS

    def engine_options(self, backend: str) -> dict:
        """The engine's options once ``auto`` is resolved to ``backend``: native-only flags reach the native
        backend however it was chosen."""
        options: dict = {"fim_template": self.fim_template}
        if self.dtype:
            options["dtype"] = self.dtype
        if backend == "native":
            options["max_requests"] = self.queue_size
            options["device"] = self.device or "auto"
            options["draft_tokens"] = self.draft_tokens
            if self.served_model_name:
                options["model_name"] = self.served_model_name
        return options


def register(groups: dict[str, typer.Typer]) -> None:
    groups["root"].command("serve")(serve)


def serve(
    model: Annotated[
        str, typer.Option(help="'nano' (the shipped model), a checkpoint directory, or a cached Hugging Face id.")
    ] = "nano",
    backend: Annotated[
        str, typer.Option(help="auto (vLLM when CUDA and vllm are installed, else native), native or vllm.")
    ] = "auto",
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 exposes the server to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_PORT,
    queue_size: Annotated[
        int, typer.Option(help="Requests held at once (running or waiting); more get 503.", min=1)
    ] = 64,
    served_model_name: Annotated[
        str | None, typer.Option(help="Name clients use in `model` (default: the checkpoint's).")
    ] = None,
    fim_template: Annotated[
        str | None, typer.Option(help="FIM template override (default: detected from the tokenizer).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="Native backend: auto, cpu or cuda.")] = None,
    dtype: Annotated[str | None, typer.Option(help="Weights dtype, e.g. float32 or bfloat16.")] = None,
    draft_tokens: Annotated[
        int,
        typer.Option(
            help="Native backend: MTP drafts per decode step (0 turns MTP off; vLLM drafts 1 for MiMo).",
            min=0,
            max=MAX_DRAFT_TOKENS,
        ),
    ] = DEFAULT_DRAFT_TOKENS,
) -> None:
    """Serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /metrics)."""
    if backend not in BACKENDS:
        _fail(f"unknown --backend {backend!r}; use one of: {', '.join(BACKENDS)}")
    settings = ServeSettings(
        model, backend, host, port, queue_size, served_model_name, fim_template, device, dtype, draft_tokens
    )
    try:
        listener = _listen(host, port)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --port or --host")
    try:
        asyncio.run(_serve(settings, listener))
    except EngineError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


def _fail(message: str) -> None:
    typer.echo(f"mimo serve: {message}", err=True)
    raise typer.Exit(2)


def _listen(host: str, port: int) -> socket.socket:
    """Binds before the (slow) model load, so a taken port is reported at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError:
        listener.close()
        raise
    listener.listen(128)
    return listener


def _default_served_name(model: str) -> str:
    """The same for every backend: a checkpoint directory's name, else what --model said ("nano", "org/id")."""
    path = Path(model).expanduser()
    return path.resolve().name if path.is_dir() else model


async def _serve(settings: ServeSettings, listener: socket.socket) -> None:
    import uvicorn

    from engine.registry import open_engine, resolve_backend
    from engine.server.app import create_app
    from engine.server.metrics import ServerMetrics
    from engine.server.serving import Admission, ServingContext

    backend_label = settings.backend if settings.backend != "auto" else "auto-selected"
    print(f"mimo serve: loading {settings.model} ({backend_label} backend)...", file=sys.stderr, flush=True)
    backend = resolve_backend(settings.backend)
    engine = open_engine(settings.model, backend=backend, **settings.engine_options(backend))
    info = engine.info()
    served_name = settings.served_model_name or _default_served_name(settings.model)
    names = tuple(dict.fromkeys(n for n in (served_name, info.model, settings.model) if n))
    ctx = ServingContext(
        engine=engine, model_names=names, metrics=ServerMetrics(), admission=Admission(settings.queue_size)
    )
    host, port = listener.getsockname()[:2]
    print(
        f"mimo serve: {names[0]} on http://{settings.host}:{port}/v1 ({info.backend} on {info.device}, "
        f"context {info.context_length}, FIM {info.fim_template or 'none'})",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(create_app(ctx), log_level="warning", timeout_graceful_shutdown=5)
    await uvicorn.Server(config).serve(sockets=[listener])
