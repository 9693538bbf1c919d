"""Pretraining configuration: frozen pydantic dataclasses read from a TOML file or a built-in preset.

A config file looks like training/presets/nano.toml (nano-continue.toml adds `init_from`):

    seed = 0
    batch_size = 16                 # sequences per optimiser step, summed over all processes
    total_tokens = 2_000_000        # the run's length; schedules are fractions of it
    checkpoint_every = 100          # optimiser steps between resumable checkpoints
    tokenizer = "tokenizer"         # an HF tokenizer directory
    init_from = "nano"              # optional: continue from this checkpoint's weights (else random init)
    strategy = "fsdp"               # optional: FSDP2-sharded weights under torchrun (default "ddp")
    [model]                         # MiMoConfig dimensions (vocab size comes from the tokenizer)
    [optim]                         # AdamW, clipping, warmup -> constant -> cosine schedule
    [mtp]                           # MTP loss weight 0.3, then 0.1 after a fraction of the tokens
    [mixture]                       # the staged data mixture (docs/data.md), or  mixture = "file.toml"

Relative paths (tokenizer, mixture file, mixture sources) are resolved against the data directory when one is
given (`--data DIR`), else against the config file's folder. Unknown keys are errors, so a typo never silently
falls back to a default; every error names the key, the value given and what is allowed.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from training.data.mixture import MixtureConfig, load_mixture
from training.errors import ConfigError, config_error

PRESETS_DIR = Path(__file__).resolve().parent / "presets"

# Each section is a pydantic dataclass: unknown keys are errors, and a number is never read from a string or a
# boolean. `dataclasses.replace` validates too, so a changed config is checked like a loaded one.
_TABLE = ConfigDict(extra="forbid")
_Positive = Annotated[StrictInt, Field(gt=0)]
_PositiveFloat = Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)]
_Share = Annotated[StrictFloat, Field(ge=0, le=1)]  # a fraction of the run, a probability, a mixing weight
_Weight = Annotated[StrictFloat, Field(ge=0, allow_inf_nan=False)]


@dataclass(frozen=True, config=_TABLE)
class ModelDims:
    """The MiMo architecture's sizes; head_dim = hidden_size / num_attention_heads must be ≥ 32 for vLLM's CPU path."""

    hidden_size: _Positive = 256
    intermediate_size: _Positive = 768
    num_hidden_layers: _Positive = 4
    num_attention_heads: _Positive = 4
    num_key_value_heads: _Positive = 2
    num_nextn_predict_layers: Annotated[StrictInt, Field(ge=0)] = 1
    max_position_embeddings: _Positive = 2048
    rope_theta: _PositiveFloat = 10000.0
    rms_norm_eps: _PositiveFloat = 1e-5  # MiMo-7B's value (Qwen2's default is 1e-6)

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelDims:
        if self.hidden_size % self.num_attention_heads or self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads}), and that of num_key_value_heads ({self.num_key_value_heads})"
            )
        return self


@dataclass(frozen=True, config=_TABLE)
class OptimConfig:
    """AdamW as MiMo trained it, with a warmup -> constant -> cosine learning-rate schedule over the run's tokens."""

    lr: _PositiveFloat = 1e-3
    min_lr: _Weight = 1e-4  # where the cosine decay ends
    beta1: Annotated[StrictFloat, Field(ge=0, lt=1)] = 0.9
    beta2: Annotated[StrictFloat, Field(ge=0, lt=1)] = 0.95
    weight_decay: _Weight = 0.1  # not applied to norms and biases
    grad_clip: _PositiveFloat = 1.0
    warmup_fraction: _Share = 0.02  # of total tokens, linear from 0
    decay_fraction: _Share = 0.3  # the last part of the run, cosine from lr to min_lr

    @model_validator(mode="after")
    def _phases_fit(self) -> OptimConfig:
        if self.warmup_fraction + self.decay_fraction > 1:
            raise ValueError("warmup_fraction + decay_fraction must be at most 1")
        return self


@dataclass(frozen=True, config=_TABLE)
class MtpConfig:
    """λ in loss = main + λ·MTP: MiMo used 0.3 for its first 10.3T of ~25T tokens, then 0.1."""

    loss_weight: _Weight = 0.3
    late_loss_weight: _Weight = 0.1
    switch_fraction: _Share = 0.4  # of total tokens
    # Self-distillation of the draft head (not in MiMo's recipe, off by default): from `distill_from` of the
    # tokens on, this share of each MTP layer's target is the main model's own prediction (see
    # MiMoForCausalLM.mtp_distill_weight). It raises draft acceptance, which is what the MTP layer is for.
    distill_weight: _Share = 0.0
    distill_from: _Share = 1.0  # of total tokens
    distill_temperature: _PositiveFloat = 1.0  # of the main model's distribution; < 1 sharpens it toward its top token


@dataclass(frozen=True, config=_TABLE)
class PretrainConfig:
    # The staged data mixture (docs/data.md): a table, or in a file the path of a mixture file.
    mixture: MixtureConfig
    tokenizer: Path  # an HF tokenizer directory
    batch_size: _Positive  # sequences per optimiser step, summed over all processes
    total_tokens: _Positive  # the run's length; schedules are fractions of it
    seed: Annotated[StrictInt, Field(ge=0)] = 0
    checkpoint_every: _Positive = 100
    log_every: _Positive = 10
    save_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"  # dtype of the exported safetensors
    # Compute: "auto" = bf16 autocast on CUDA, float32 on CPU.
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    # How several processes (torchrun) share the model: "ddp" replicates it (checkpoint.pt); "fsdp" shards
    # weights, gradients and AdamW state with FSDP2 (a sharded checkpoint/ that resumes on any process count).
    strategy: Literal["ddp", "fsdp"] = "ddp"
    # Rows per forward and backward in each process, gradients accumulating over the process's share of the
    # batch (batch_size / processes must divide by it); None: the whole share at once.
    micro_batch_size: _Positive | None = None
    # Recompute each layer's activations during backward instead of keeping them (less memory, ~1/3 more compute).
    activation_checkpointing: StrictBool = False
    # Continued pretraining: the weights to start from ("nano" or a checkpoint directory); None = random init.
    init_from: Annotated[StrictStr, Field(min_length=1)] | None = None
    model: ModelDims = field(default_factory=ModelDims)
    optim: OptimConfig = field(default_factory=OptimConfig)
    mtp: MtpConfig = field(default_factory=MtpConfig)

    @field_validator("mixture", mode="before")
    @classmethod
    def _mixture_file(cls, value: Any, info: ValidationInfo) -> Any:
        """A string names a mixture file; a table is read in place (relative paths from the base folder)."""
        if not isinstance(value, str):
            return value
        try:
            return load_mixture(Path((info.context or {}).get("base_dir") or ".") / value)
        except ConfigError as error:  # reported with the config's other problems
            raise ValueError(str(error)) from None

    @field_validator("tokenizer", mode="before")
    @classmethod
    def _tokenizer_from_base_dir(cls, value: Any, info: ValidationInfo) -> Any:
        base = (info.context or {}).get("base_dir")
        return Path(base) / value if base is not None and isinstance(value, str) else value

    @field_validator("init_from", mode="before")
    @classmethod
    def _init_from_base_dir(cls, value: Any, info: ValidationInfo) -> Any:
        base = (info.context or {}).get("base_dir")
        if base is None or not isinstance(value, str) or not value:
            return value
        return resolve_init_from(value, Path(base))

    @model_validator(mode="after")
    def _micro_batches_divide(self) -> PretrainConfig:
        if self.micro_batch_size is not None and self.batch_size % self.micro_batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} must be a multiple of micro_batch_size {self.micro_batch_size}"
            )
        return self

    @model_validator(mode="after")
    def _stages_fit_the_model(self) -> PretrainConfig:
        longest = max(stage.seq_len for stage in self.mixture.stages)
        if longest + 1 > self.model.max_position_embeddings:
            raise ValueError(
                f"model.max_position_embeddings {self.model.max_position_embeddings} < longest stage {longest} + 1"
            )
        return self


_READER = TypeAdapter(PretrainConfig)


def preset_path(name: str) -> Path:
    path = PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.toml")))
        raise ConfigError(f"no preset {name!r}; built-in presets: {known}")
    return path


def read_toml(path: Path) -> dict:
    """A TOML config file as a table; a missing or malformed file is a ConfigError naming it."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def load_model_sections(path: Path) -> tuple[ModelDims, OptimConfig]:
    """Only the [model] and [optim] tables of a config (benchmarks build the model without data)."""
    table = read_toml(path)
    sections = []
    for name, cls in (("model", ModelDims), ("optim", OptimConfig)):
        try:
            sections.append(TypeAdapter(cls).validate_python(table.get(name, {})))
        except ValidationError as error:
            raise config_error(error, cls, str(path), prefix=(name,)) from None
    return sections[0], sections[1]


def load_pretrain_config(path: Path, data_dir: Path | None = None) -> PretrainConfig:
    """Reads a TOML config; `data_dir` (if given) is the base for its relative paths."""
    path = Path(path)
    table = read_toml(path)
    base_dir = Path(data_dir) if data_dir is not None else path.parent
    try:
        return config_from_dict(table, base_dir)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def config_from_dict(table: Any, base_dir: Path) -> PretrainConfig:
    try:
        return _READER.validate_python(table, context={"base_dir": Path(base_dir)})
    except ValidationError as error:
        raise config_error(error, PretrainConfig) from None


def with_changes(config: PretrainConfig, **changes: Any) -> PretrainConfig:
    """`config` with some values replaced (command-line overrides), checked like a loaded config."""
    try:
        return dataclasses.replace(config, **changes)
    except ValidationError as error:
        raise config_error(error, PretrainConfig) from None


def validate(config: PretrainConfig) -> None:
    """Checks a config built in code (a loaded or replaced one was checked already)."""
    with_changes(config)


def resolve_init_from(value: Any, base_dir: Path) -> str:
    """ "nano" stays a name; a relative path is read from `base_dir`, like the tokenizer's."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"init_from must be 'nano' or a checkpoint directory, got {value!r}")
    return value if value == "nano" else str(base_dir / Path(value).expanduser())
