"""Configuration of `mimo train rl` and `mimo train sft`: pydantic models read from TOML, presets, overrides.

A run's config is a TOML file or a built-in preset (`training/presets/rl/*.toml`, `training/presets/sft/*.toml`),
then ``--set KEY=VALUE`` overrides (``--set reward.scheme=soft``, ``--set grpo.learning_rate=2e-5``). Unknown
keys, wrong types and values outside what is allowed stop the run before it starts, with a message naming the
key, the value and what is allowed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from training.config import read_toml
from training.errors import ConfigError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GrpoSettings(Section):
    """TRL GRPOConfig knobs, with MiMo's recipe as the defaults (mimo-7b.md §3)."""

    num_generations: int = Field(8, ge=2)  # G, rollouts per problem
    problems_per_step: int = Field(8, ge=1)  # groups in one optimiser step (summed over processes)
    steps_per_generation: int = Field(1, ge=1)  # optimiser steps per generation batch (MiMo: 16)
    learning_rate: float = Field(1e-6, gt=0)  # MiMo-7B: 1e-6
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    beta: float = Field(0.0, ge=0)  # KL weight; MiMo: no KL loss
    loss_type: Literal["dapo", "grpo", "dr_grpo", "bnpo"] = "dapo"  # dapo: token-level, 1 / sum |o_i|
    epsilon: float = Field(0.2, gt=0)  # clip low
    epsilon_high: float = Field(0.28, gt=0)  # clip-higher
    scale_rewards: Literal["group", "batch", "none"] = "group"  # A = (r - mean) / std over the group
    mask_truncated_completions: bool = True
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_completion_length: int = Field(256, ge=1)


class RewardSettings(Section):
    scheme: Literal["strict", "soft", "binary"] = "strict"  # Test Difficulty Driven Reward; binary = off
    test_timeout_s: float = Field(5.0, gt=0)
    workers: int = Field(0, ge=0)  # parallel sandboxes (0: two per core)


class DynamicSampling(Section):
    enabled: bool = True
    # Draw at most this many groups for each one the optimiser batch needs; past it, the empty places are masked
    # out of the loss (logged as `dynamic/unfilled`).
    max_draw_factor: float = Field(3.0, ge=1)


class EasyPool(Section):
    mode: Literal["resample", "delete", "off"] = "resample"  # delete: MiMo's ablation (drop solved problems)
    alpha: float = Field(0.1, ge=0, le=1)  # probability of drawing a problem from the easy pool


class RolloutSettings(Section):
    backend: Literal["native", "trl", "vllm-colocate", "vllm-server"] = "native"
    use_mtp: bool = True  # native: MTP speculative sampling (lossless)
    draft_tokens: int = Field(3, ge=1, le=8)
    # native: MTP drafts only while at most this many sequences decode together; a bigger batch takes plain
    # steps (on a CPU it is compute-bound and drafts cost more than they save: docs/benchmarks.md, 8 measured
    # best for nano). A GPU stays memory-bound to far larger batches: raise it there. 0: never draft.
    draft_max_batch: int | None = Field(8, ge=0)
    max_batch: int = Field(64, ge=1)  # native: sequences decoded together
    vllm_server_base_url: str | None = None  # vllm-server: where `trl vllm-serve` listens
    vllm_tensor_parallel_size: int = Field(1, ge=1)
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1)


class RLConfig(Section):
    model: str = "nano"  # the starting policy: 'nano' or a checkpoint directory (e.g. an SFT run's model/)
    tasks: str = "project"  # a task file, or a built-in set: project, families-train, families-heldout
    seed: int = 0
    steps: int = Field(100, ge=1)  # optimiser steps
    save_every: int = Field(25, ge=1)  # steps between resumable checkpoints
    save_dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # of the exported model
    threads: int = Field(0, ge=0)  # torch CPU threads (0: torch's default)
    grpo: GrpoSettings = GrpoSettings()
    reward: RewardSettings = RewardSettings()
    dynamic_sampling: DynamicSampling = DynamicSampling()
    easy_pool: EasyPool = EasyPool()
    rollout: RolloutSettings = RolloutSettings()

    @model_validator(mode="after")
    def _vllm_server_needs_url(self) -> RLConfig:
        if self.rollout.backend == "vllm-server" and not self.rollout.vllm_server_base_url:
            raise ValueError("rollout.backend = 'vllm-server' needs rollout.vllm_server_base_url")
        return self


class SFTConfig(Section):
    model: str = "nano"
    tasks: str = "project"
    seed: int = 0
    epochs: float = Field(3.0, gt=0)
    learning_rate: float = Field(1e-4, gt=0)
    batch_size: int = Field(16, ge=1)  # sequences per optimiser step, summed over processes
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_length: int = Field(512, ge=8)
    save_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    threads: int = Field(0, ge=0)
    # The MTP layer: "tune" trains it beside the trunk, toward the main head's own predictions, so drafts keep
    # being accepted; "freeze" leaves it as it was.
    mtp: Literal["tune", "freeze"] = "tune"
    mtp_loss_weight: float = Field(1.0, ge=0)  # λ in main + λ·MTP
    mtp_distill_weight: float = Field(1.0, ge=0, le=1)  # share of the MTP target that is the main head's
    mtp_distill_temperature: float = Field(0.5, gt=0)  # of that teacher distribution (< 1: sharper)


def preset_path(kind: str, name: str) -> Path:
    path = PRESETS_DIR / kind / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in (PRESETS_DIR / kind).glob("*.toml")))
        raise ConfigError(f"no {kind} preset {name!r}; built-in presets: {known}")
    return path


def load_config(model: type[Section], path: Path | None, overrides: list[str] = ()) -> Section:
    """The config in ``path`` (or all defaults), with ``KEY=VALUE`` overrides applied, validated."""
    table = read_toml(Path(path)) if path is not None else {}
    for override in overrides:
        key, value = _parse_override(override)
        _set(table, key, value)
    try:
        return model.model_validate(table)
    except ValidationError as error:
        where = f"{path}: " if path is not None else ""
        raise ConfigError(where + describe(error, model)) from None


def describe(error: ValidationError, model: type[Section]) -> str:
    """One line: the key, the value given, and what is allowed there."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        section = _section_at(model, first["loc"][:-1])
        return f"unknown key {key!r}; allowed here: {', '.join(section.model_fields)}"
    if not first["loc"]:
        return first["msg"].removeprefix("Value error, ")
    return f"{key} = {first.get('input')!r}: {first['msg']}"


def _section_at(model: type[Section], path: tuple) -> type[Section]:
    for part in path:
        annotation = model.model_fields[str(part)].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, Section) else model
    return model


def _parse_override(text: str) -> tuple[str, object]:
    """``a.b=VALUE``: VALUE read as a TOML value (``2e-5``, ``true``, ``"x"``), else taken as a plain string."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    key, equals, raw = text.partition("=")
    key = key.strip()
    if not equals or not key:
        raise ConfigError(f"--set {text!r}: write KEY=VALUE, e.g. --set reward.scheme=soft")
    try:
        return key, tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        return key, raw.strip()


def _set(table: dict, key: str, value: object) -> None:
    *sections, leaf = key.split(".")
    for section in sections:
        table = table.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"--set {key}: {section} is a value, not a section")
    table[leaf] = value
