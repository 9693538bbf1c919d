"""Model names and backends: "nano" (the shipped checkpoint), a local path, or a Hugging Face id already in the
local cache (nothing is ever downloaded at run time: `mimo pull` downloads, engine.pull); ``open_engine`` picks
the backend."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from engine.api import BadRequest, Engine, ModelNotFound

NANO_NAME = "nano"
NANO_DIR = Path(__file__).resolve().parent / "assets" / "nano"
BACKENDS = ("auto", "native", "vllm")


def resolve_model(name: str) -> Path:
    """The checkpoint directory for ``name``: "nano", a directory, or a cached Hugging Face id ("org/model")."""
    if name == NANO_NAME:
        if not (NANO_DIR / "config.json").is_file():
            raise ModelNotFound(
                f"the mimo-nano checkpoint is missing from {NANO_DIR}; reinstall mimo-code or pass --model PATH"
            )
        return NANO_DIR
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"{path} has no config.json; point --model at a Hugging Face checkpoint directory")
        return path.resolve()
    if _looks_like_hub_id(name):
        return _cached_hub_snapshot(name)
    raise ModelNotFound(
        f"no model {name!r}: use 'nano', a checkpoint directory, or a Hugging Face id fetched with `mimo pull ORG/MODEL`"
    )


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def _cached_hub_snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except LocalEntryNotFoundError:
        raise ModelNotFound(
            f"{repo_id} is not in the local Hugging Face cache; download it with `mimo pull {repo_id}` "
            "or pass a checkpoint directory"
        ) from None


def open_engine(model: str = NANO_NAME, backend: str = "native", replicas: int = 1, **options) -> Engine:
    """An engine for ``model``. ``backend`` "auto" means vLLM when CUDA and vllm are present, else native.
    ``replicas`` > 1 (vLLM only) opens that many engines, each on its own GPUs (data parallelism)."""
    if backend not in BACKENDS:
        raise BadRequest(f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}")
    path = resolve_model(model)
    if resolve_backend(backend) == "vllm":
        from engine.vllm_engine import VllmEngine, open_replicas

        return VllmEngine(path, **options) if replicas == 1 else open_replicas(path, replicas, **options)
    if replicas != 1:
        raise BadRequest("data-parallel replicas need the vLLM backend")
    from engine.native import NativeEngine

    return NativeEngine(path, **options)


def resolve_backend(backend: str) -> str:
    """ "auto" made concrete: vLLM when CUDA and vllm are present, else native; other names unchanged."""
    if backend == "auto":
        return "vllm" if _vllm_usable() else "native"
    return backend


def _vllm_usable() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()
