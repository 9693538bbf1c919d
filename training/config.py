"""Pretraining configuration: frozen dataclasses read from a TOML file or a built-in preset.

A config file looks like training/presets/nano.toml (nano-continue.toml adds `init_from`):

    seed = 0
    batch_size = 16                 # sequences per optimiser step, summed over all processes
    total_tokens = 2_000_000        # the run's length; schedules are fractions of it
    checkpoint_every = 100          # optimiser steps between resumable checkpoints
    tokenizer = "tokenizer"         # an HF tokenizer directory
    init_from = "nano"              # optional: continue from this checkpoint's weights (else random init)
    [model]                         # MiMoConfig dimensions (vocab size comes from the tokenizer)
    [optim]                         # AdamW, clipping, warmup -> constant -> cosine schedule
    [mtp]                           # MTP loss weight 0.3, then 0.1 after a fraction of the tokens
    [mixture]                       # the staged data mixture (docs/data.md), or  mixture = "file.toml"

Relative paths (tokenizer, mixture file, mixture sources) are resolved against the data directory when one is
given (`--data DIR`), else against the config file's folder. Unknown keys are errors, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from training.errors import ConfigError

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


@dataclass(frozen=True)
class ModelDims:
    """The MiMo architecture's sizes; head_dim = hidden_size / num_attention_heads must be ≥ 32 for vLLM's CPU path."""

    hidden_size: int = 256
    intermediate_size: int = 768
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    num_nextn_predict_layers: int = 1
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5  # MiMo-7B's value (Qwen2's default is 1e-6)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW as MiMo trained it, with a warmup -> constant -> cosine learning-rate schedule over the run's tokens."""

    lr: float = 1e-3
    min_lr: float = 1e-4  # where the cosine decay ends
    beta1: float = 0.9
    beta2: float = 0.95
    weight_decay: float = 0.1  # not applied to norms and biases
    grad_clip: float = 1.0
    warmup_fraction: float = 0.02  # of total tokens, linear from 0
    decay_fraction: float = 0.3  # the last part of the run, cosine from lr to min_lr


@dataclass(frozen=True)
class MtpConfig:
    """λ in loss = main + λ·MTP: MiMo used 0.3 for its first 10.3T of ~25T tokens, then 0.1."""

    loss_weight: float = 0.3
    late_loss_weight: float = 0.1
    switch_fraction: float = 0.4  # of total tokens
    # Self-distillation of the draft head (not in MiMo's recipe, off by default): from `distill_from` of the
    # tokens on, this share of each MTP layer's target is the main model's own prediction (see
    # MiMoForCausalLM.mtp_distill_weight). It raises draft acceptance, which is what the MTP layer is for.
    distill_weight: float = 0.0
    distill_from: float = 1.0  # of total tokens
    distill_temperature: float = 1.0  # of the main model's distribution; < 1 sharpens it toward its top token


@dataclass(frozen=True)
class PretrainConfig:
    mixture: "MixtureConfig"  # noqa: F821 (training.data.mixture, imported lazily)
    tokenizer: Path
    batch_size: int
    total_tokens: int
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    save_dtype: str = "bfloat16"  # dtype of the exported safetensors
    precision: str = "auto"  # compute: "auto" = bf16 autocast on CUDA, float32 on CPU; or "float32", "bfloat16"
    # Continued pretraining: the weights to start from ("nano" or a checkpoint directory); None = random init.
    init_from: str | None = None
    model: ModelDims = field(default_factory=ModelDims)
    optim: OptimConfig = field(default_factory=OptimConfig)
    mtp: MtpConfig = field(default_factory=MtpConfig)


_SECTIONS = {"model": ModelDims, "optim": OptimConfig, "mtp": MtpConfig}
_SCALARS = {
    "tokenizer", "batch_size", "total_tokens", "seed", "checkpoint_every", "log_every", "save_dtype", "precision",
    "init_from",
}  # fmt: skip
_SAVE_DTYPES = ("bfloat16", "float16", "float32")
_PRECISIONS = ("auto", "float32", "bfloat16")


def preset_path(name: str) -> Path:
    path = PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.toml")))
        raise ConfigError(f"no preset {name!r}; built-in presets: {known}")
    return path


def load_model_sections(path: Path) -> tuple[ModelDims, OptimConfig]:
    """Only the [model] and [optim] tables of a config (benchmarks build the model without data)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib

    table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    return _section(table.get("model", {}), ModelDims, "model"), _section(table.get("optim", {}), OptimConfig, "optim")


def load_pretrain_config(path: Path, data_dir: Path | None = None) -> PretrainConfig:
    """Reads a TOML config; `data_dir` (if given) is the base for its relative paths."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    base_dir = Path(data_dir) if data_dir is not None else path.parent
    try:
        return config_from_dict(table, base_dir)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def config_from_dict(table: dict, base_dir: Path) -> PretrainConfig:
    allowed = _SCALARS | set(_SECTIONS) | {"mixture"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    for required in ("mixture", "tokenizer", "batch_size", "total_tokens"):
        if required not in table:
            raise ConfigError(f"missing '{required}'")
    sections = {name: _section(table.get(name, {}), cls, name) for name, cls in _SECTIONS.items()}
    scalars = {key: table[key] for key in _SCALARS if key in table}
    scalars["tokenizer"] = base_dir / str(scalars["tokenizer"])
    if "init_from" in scalars:
        scalars["init_from"] = resolve_init_from(scalars["init_from"], base_dir)
    config = PretrainConfig(mixture=_mixture(table["mixture"], base_dir), **scalars, **sections)
    validate(config)
    return config


def resolve_init_from(value, base_dir: Path) -> str:
    """ "nano" stays a name; a relative path is read from `base_dir`, like the tokenizer's."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"init_from must be 'nano' or a checkpoint directory, got {value!r}")
    return value if value == "nano" else str(base_dir / Path(value).expanduser())


def _section(raw, cls, name: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"[{name}]: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(fields)}")
    for key, value in raw.items():
        expected = type(fields[key].default)
        if isinstance(value, bool) or not isinstance(value, (int, float) if expected is float else expected):
            raise ConfigError(f"[{name}] {key} must be a {expected.__name__}, got {value!r}")
    return cls(**{key: float(value) if isinstance(fields[key].default, float) else value for key, value in raw.items()})


def _mixture(raw, base_dir: Path):
    from training.data.mixture import load_mixture, mixture_from_dict

    if isinstance(raw, str):
        return load_mixture(base_dir / raw)
    if isinstance(raw, dict):
        return mixture_from_dict(raw, base_dir)
    raise ConfigError("'mixture' must be a table or the path of a mixture file")


def validate(config: PretrainConfig) -> None:
    """Cross-field checks a typo or an impossible size would otherwise turn into a crash mid-run."""
    positive = {"batch_size": config.batch_size, "total_tokens": config.total_tokens}
    positive |= {"checkpoint_every": config.checkpoint_every, "log_every": config.log_every}
    for key, value in positive.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    if config.save_dtype not in _SAVE_DTYPES:
        raise ConfigError(f"save_dtype must be one of {', '.join(_SAVE_DTYPES)}, got {config.save_dtype!r}")
    if config.precision not in _PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(_PRECISIONS)}, got {config.precision!r}")
    dims = config.model
    if dims.hidden_size % dims.num_attention_heads or dims.num_attention_heads % dims.num_key_value_heads:
        raise ConfigError("[model] hidden_size must divide by num_attention_heads, and heads by num_key_value_heads")
    longest = max(stage.seq_len for stage in config.mixture.stages)
    if longest + 1 > dims.max_position_embeddings:
        raise ConfigError(
            f"[model] max_position_embeddings {dims.max_position_embeddings} < longest stage {longest} + 1"
        )
    optim = config.optim
    fractions = (optim.warmup_fraction, optim.decay_fraction)
    if min(fractions) < 0 or sum(fractions) > 1:
        raise ConfigError("[optim] warmup_fraction + decay_fraction must lie in [0, 1]")
    for key in ("switch_fraction", "distill_weight", "distill_from"):
        if not 0 <= getattr(config.mtp, key) <= 1:
            raise ConfigError(f"[mtp] {key} must lie in [0, 1]")
    if not config.mtp.distill_temperature > 0:
        raise ConfigError("[mtp] distill_temperature must be positive")
