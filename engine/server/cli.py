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
from pathlib import Path
from typing import Annotated

import typer

from engine.api import MAX_DRAFT_TOKENS, EngineError
from engine.server.auth import API_KEY_ENV
from engine.server.options import (
    ServeSettings,
    UsageError,
    check,
    choose_backend,
    engine_options,
    parse_vllm_args,
)

DEFAULT_PORT = 8000  # vLLM's and most OpenAI-compatible servers' default, so clients find us there
VLLM = "vLLM backend"  # help panel of the flags that only vLLM reads


def register(groups: dict[str, typer.Typer]) -> None:
    groups["root"].command("serve")(serve)


def serve(
    model: Annotated[
        str, typer.Option(help="'nano' (the shipped model), a checkpoint directory, or an id fetched by `mimo pull`.")
    ] = "nano",
    backend: Annotated[
        str, typer.Option(help="auto (vLLM when CUDA and vllm are installed, else native), native or vllm.")
    ] = "auto",
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 exposes the server to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).", min=0, max=65535)] = DEFAULT_PORT,
    queue_size: Annotated[
        int, typer.Option(help="Requests held at once (running or waiting); more get 503.", min=1)
    ] = 64,
    served_model_name: Annotated[
        str | None, typer.Option(help="Name clients use in `model` (default: the checkpoint's).")
    ] = None,
    fim_template: Annotated[
        str | None, typer.Option(help="FIM template override (default: detected from the tokenizer).")
    ] = None,
    prompt_mode: Annotated[
        str | None,
        typer.Option(help="How clients should prompt completions: fim, prefix or chat (default: by model family)."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar=API_KEY_ENV,
            show_envvar=True,
            help="Answer 401 to requests without this bearer key (/health stays open).",
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="Native backend: auto, cpu, cuda or cuda:N.")] = None,
    dtype: Annotated[str | None, typer.Option(help="Weights dtype: auto, float32, float16 or bfloat16.")] = None,
    draft_tokens: Annotated[
        int | None,
        typer.Option(
            help="MTP drafts per decode step, 0 turns MTP off (default: 3 native, 1 vLLM, which reruns its one layer).",
            min=0,
            max=MAX_DRAFT_TOKENS,
        ),
    ] = None,
    max_model_len: Annotated[
        int | None, typer.Option(help="Context length (default: the model's).", rich_help_panel=VLLM)
    ] = None,
    tensor_parallel_size: Annotated[
        int | None, typer.Option("--tensor-parallel-size", "-tp", help="GPUs per layer.", rich_help_panel=VLLM)
    ] = None,
    pipeline_parallel_size: Annotated[
        int | None, typer.Option("--pipeline-parallel-size", "-pp", help="Pipeline stages.", rich_help_panel=VLLM)
    ] = None,
    data_parallel_size: Annotated[
        int | None,
        typer.Option("--data-parallel-size", "-dp", help="Engines, each on its own GPUs.", rich_help_panel=VLLM),
    ] = None,
    gpu_memory_utilization: Annotated[
        float | None, typer.Option(help="Share of GPU memory vLLM may take (0.9).", rich_help_panel=VLLM)
    ] = None,
    vllm_arg: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY=VALUE",
            help="Any other vllm.EngineArgs field, VALUE read as JSON when it parses; repeatable.",
            rich_help_panel=VLLM,
        ),
    ] = None,
    vllm_usage_stats: Annotated[
        bool, typer.Option(help="Let vLLM send its usage statistics to the vLLM project.", rich_help_panel=VLLM)
    ] = False,
) -> None:
    """Serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /metrics)."""
    try:
        settings = ServeSettings(
            model=model, backend=backend, host=host, port=port, queue_size=queue_size,
            served_model_name=served_model_name, fim_template=fim_template, prompt_mode=prompt_mode,
            device=device, dtype=dtype, draft_tokens=draft_tokens, max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size, pipeline_parallel_size=pipeline_parallel_size,
            data_parallel_size=data_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
            vllm_args=parse_vllm_args(vllm_arg or []), vllm_usage_stats=vllm_usage_stats, api_key=api_key,
        )  # fmt: skip
        check(settings)
        chosen = choose_backend(settings, _resolve_auto)
    except UsageError as exc:
        _fail(str(exc))
    try:
        listener = _listen(host, port)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --port or --host")
    try:
        asyncio.run(_serve(settings, chosen, listener))
    except EngineError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


def _fail(message: str) -> None:
    typer.echo(f"mimo serve: {message}", err=True)
    raise typer.Exit(2)


def _resolve_auto() -> str:
    from engine.registry import resolve_backend

    return resolve_backend("auto")


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


async def open_serving_engine(settings: ServeSettings, backend: str):
    """The engine `mimo serve` runs for these settings: the backend's engine (or its data-parallel replicas),
    labelled with the prompt mode the server advertises. Raises EngineError (a bad --prompt-mode included)."""
    from engine.composite import PromptModeEngine
    from engine.formats import default_prompt_mode
    from engine.registry import open_engine

    replicas = settings.data_parallel_size or 1
    options = engine_options(settings, backend)
    engine = open_engine(settings.model, backend=backend, replicas=replicas, **options)
    info = engine.info()
    mode = settings.prompt_mode or default_prompt_mode(info)
    if mode == "fim" and info.fim_template is None:
        await engine.aclose()
        raise EngineError(f"--prompt-mode fim: {info.model} has no fill-in-the-middle tokens; use prefix or chat")
    return PromptModeEngine(engine, mode)


async def _serve(settings: ServeSettings, backend: str, listener: socket.socket) -> None:
    import uvicorn

    from engine.server.app import create_app
    from engine.server.metrics import ServerMetrics
    from engine.server.serving import Admission, ServingContext

    label = f"{backend} backend" if settings.backend != "auto" else f"{backend} backend, auto-selected"
    print(f"mimo serve: loading {settings.model} ({label})...", file=sys.stderr, flush=True)
    engine = await open_serving_engine(settings, backend)
    info = engine.info()
    served_name = settings.served_model_name or _default_served_name(settings.model)
    names = tuple(dict.fromkeys(n for n in (served_name, info.model, settings.model) if n))
    ctx = ServingContext(
        engine=engine, model_names=names, metrics=ServerMetrics(), admission=Admission(settings.queue_size)
    )
    port = listener.getsockname()[1]
    replicas = f" x {settings.data_parallel_size}" if (settings.data_parallel_size or 1) > 1 else ""
    print(
        f"mimo serve: {names[0]} on http://{settings.host}:{port}/v1 ({info.backend}{replicas} on {info.device}, "
        f"context {info.context_length}, FIM {info.fim_template or 'none'}, prompt mode {info.prompt_mode}"
        f"{', API key required' if settings.api_key else ''})",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(create_app(ctx, api_key=settings.api_key), log_level="warning", timeout_graceful_shutdown=5)
    await uvicorn.Server(config).serve(sockets=[listener])
