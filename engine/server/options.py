"""What `mimo serve` was asked for, checked before anything loads, and turned into engine options.

Every mistake here is the user's to fix, so each raises ``UsageError`` with one line that names the flag, the
value and what is allowed; `mimo serve` prints it and exits with status 2. Nothing is imported that a bad flag
would not need: torch only to check ``--device cuda``, vLLM not at all (its own checks run when it starts).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from engine.api import DEFAULT_DRAFT_TOKENS, MAX_DRAFT_TOKENS
from engine.formats import PROMPT_MODES

BACKENDS = ("auto", "native", "vllm")
DTYPES = ("auto", "float32", "float", "float16", "half", "bfloat16")
VLLM_DRAFT_TOKENS = 1  # vLLM's MiMo MTP reruns its one layer for k > 1, which lowers acceptance (docs/vllm.md)
# Engine arguments that have flags of their own: given twice, one would silently win.
_MANAGED_VLLM_ARGS = {
    "model": "--model",
    "dtype": "--dtype",
    "max_model_len": "--max-model-len",
    "tensor_parallel_size": "--tensor-parallel-size",
    "pipeline_parallel_size": "--pipeline-parallel-size",
    "data_parallel_size": "--data-parallel-size",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "num_speculative_tokens": "--draft-tokens",
}
_VLLM_ARG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class UsageError(ValueError):
    """A flag's value is wrong; the message says which and what to pass instead."""


@dataclass(frozen=True)
class ServeSettings:
    model: str = "nano"
    backend: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    queue_size: int = 64
    served_model_name: str | None = None
    fim_template: str | None = None
    prompt_mode: str | None = None  # None: the model family's default (engine.formats.default_prompt_mode)
    device: str | None = None  # native backend only
    dtype: str | None = None
    draft_tokens: int | None = None  # None: 3 on the native backend, 1 on vLLM
    max_model_len: int | None = None  # vLLM only
    tensor_parallel_size: int | None = None  # vLLM only
    pipeline_parallel_size: int | None = None  # vLLM only
    data_parallel_size: int | None = None  # vLLM only: this many engines, each on its own GPUs
    gpu_memory_utilization: float | None = None  # vLLM only
    vllm_args: dict[str, Any] = field(default_factory=dict)  # further vllm.EngineArgs, passed through
    vllm_usage_stats: bool = False  # let vLLM report usage statistics to its project (off unless asked)
    api_key: str | None = field(default=None, repr=False)  # never in a repr, a log or an error

    def vllm_only_flags(self) -> list[str]:
        """The vLLM-only flags that were given, as the user spelled them."""
        given = {
            "--max-model-len": self.max_model_len,
            "--tensor-parallel-size": self.tensor_parallel_size,
            "--pipeline-parallel-size": self.pipeline_parallel_size,
            "--data-parallel-size": self.data_parallel_size,
            "--gpu-memory-utilization": self.gpu_memory_utilization,
            "--vllm-arg": self.vllm_args or None,
            "--vllm-usage-stats": self.vllm_usage_stats or None,
        }
        return [flag for flag, value in given.items() if value is not None]


def parse_vllm_args(items: list[str]) -> dict[str, Any]:
    """`--vllm-arg KEY=VALUE` items as vllm.EngineArgs keyword arguments. KEY is an EngineArgs field, spelled
    with `_` or `-` (as `vllm serve` spells its flags); VALUE is read as JSON when it parses (numbers, true,
    null, {"cudagraph_capture_sizes": [1, 2]}), else taken as a string. Unknown keys are refused when vLLM
    starts (the engine knows its fields; this module does not import vLLM)."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, equals, raw = item.partition("=")
        key = key.strip().lstrip("-")
        if not equals or not _VLLM_ARG_NAME.fullmatch(key):
            raise UsageError(f"--vllm-arg {item!r}: write KEY=VALUE, e.g. --vllm-arg max_num_seqs=64")
        key = key.replace("-", "_")
        if key in _MANAGED_VLLM_ARGS:
            raise UsageError(f"--vllm-arg {key}: use {_MANAGED_VLLM_ARGS[key]} instead")
        if key in parsed:
            raise UsageError(f"--vllm-arg {key} is given twice")
        try:
            parsed[key] = json.loads(raw)
        except ValueError:
            parsed[key] = raw
    return parsed


def choose_backend(settings: ServeSettings, resolve_auto) -> str:
    """The concrete backend, or a UsageError when the flags given cannot go together. ``auto`` becomes native
    when ``--device`` is given (a device is a native-backend choice), vLLM when a vLLM-only flag is, else
    ``resolve_auto()`` (vLLM with CUDA and vllm installed)."""
    if settings.backend not in BACKENDS:
        raise UsageError(f"unknown --backend {settings.backend!r}; use one of: {', '.join(BACKENDS)}")
    vllm_flags = settings.vllm_only_flags()
    if settings.device and vllm_flags:
        raise UsageError(f"--device is for the native backend and {vllm_flags[0]} for vLLM; pass one of them")
    backend = settings.backend
    if backend == "auto":
        backend = "native" if settings.device else "vllm" if vllm_flags else resolve_auto()
    if backend == "native" and vllm_flags:
        raise UsageError(f"{vllm_flags[0]} needs --backend vllm")
    if backend == "vllm" and settings.device:
        raise UsageError("--device is for the native backend; vLLM runs on the platform it was built for")
    return backend


def check(settings: ServeSettings) -> None:
    """Raises UsageError for a value no backend could use."""
    if settings.dtype is not None and settings.dtype not in DTYPES:
        raise UsageError(f"unknown --dtype {settings.dtype!r}; use one of: {', '.join(DTYPES)}")
    if settings.prompt_mode is not None and settings.prompt_mode not in PROMPT_MODES:
        raise UsageError(f"unknown --prompt-mode {settings.prompt_mode!r}; use one of: {', '.join(PROMPT_MODES)}")
    if settings.draft_tokens is not None and not 0 <= settings.draft_tokens <= MAX_DRAFT_TOKENS:
        raise UsageError(f"--draft-tokens {settings.draft_tokens}: use 0 (no MTP) to {MAX_DRAFT_TOKENS}")
    for flag, value in (
        ("--max-model-len", settings.max_model_len),
        ("--tensor-parallel-size", settings.tensor_parallel_size),
        ("--pipeline-parallel-size", settings.pipeline_parallel_size),
        ("--data-parallel-size", settings.data_parallel_size),
    ):
        if value is not None and value < 1:
            raise UsageError(f"{flag} {value}: it must be at least 1")
    utilization = settings.gpu_memory_utilization
    if utilization is not None and not (math.isfinite(utilization) and 0 < utilization <= 1):
        raise UsageError(f"--gpu-memory-utilization {utilization}: a fraction of the GPU's memory, in (0, 1]")
    if settings.api_key is not None and not settings.api_key.strip():
        raise UsageError("--api-key (or MIMO_API_KEY) is empty; give a key or leave it unset")
    check_device(settings.device)


def check_device(device: str | None) -> None:
    if device in (None, "auto", "cpu"):
        return
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if match is None:
        raise UsageError(f"unknown --device {device!r}; use auto, cpu, cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise UsageError(
            f"--device {device}: no CUDA GPU is usable here (torch {torch.__version__}, {build}); use --device cpu"
        )
    if match[1] is not None and int(match[1]) >= torch.cuda.device_count():
        raise UsageError(
            f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0"
        )


def engine_options(settings: ServeSettings, backend: str) -> dict[str, Any]:
    """The options of ``engine.registry.open_engine`` for ``backend`` (already chosen by ``choose_backend``)."""
    options: dict[str, Any] = {"fim_template": settings.fim_template}
    if settings.served_model_name:
        options["model_name"] = settings.served_model_name
    if settings.dtype:
        options["dtype"] = settings.dtype
    if backend == "native":
        options["max_requests"] = settings.queue_size
        options["device"] = settings.device or "auto"
        options["draft_tokens"] = DEFAULT_DRAFT_TOKENS if settings.draft_tokens is None else settings.draft_tokens
        return options
    options["num_speculative_tokens"] = VLLM_DRAFT_TOKENS if settings.draft_tokens is None else settings.draft_tokens
    options["usage_stats"] = settings.vllm_usage_stats
    for name in ("max_model_len", "tensor_parallel_size", "pipeline_parallel_size", "gpu_memory_utilization"):
        if getattr(settings, name) is not None:
            options[name] = getattr(settings, name)
    return options | settings.vllm_args
