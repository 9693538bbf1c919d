"""The staged data mixture: which shard directories feed each training stage, in what proportion, at what length.

MiMo pretrains in three stages (broad mix; code and math raised to ~70 %; synthetic reasoning with longer
sequences). A mixture file names the sources and the stages; `MixtureSampler` turns it into batches. Every batch's
randomness is derived from (seed, step), so the sampler's whole state is two integers and a resumed run sees
exactly the batches an uninterrupted one would. See docs/data.md for the file format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import (
    ConfigDict,
    Field,
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

from training.data.shards import TokenStream, open_stream
from training.errors import ConfigError, config_error

TOLERANCE = 1e-6
_TABLE = ConfigDict(extra="forbid")
_Weight = Annotated[StrictFloat, Field(ge=0, allow_inf_nan=False)]


@dataclass(frozen=True, config=_TABLE)
class Stage:
    name: Annotated[StrictStr, Field(min_length=1)]
    weights: Annotated[dict[str, _Weight], Field(min_length=1)]  # source name -> weight; sums to 1
    seq_len: Annotated[StrictInt, Field(gt=0)]
    # The share of the run's total tokens spent in this stage; the stages' fractions sum to 1.
    fraction: Annotated[StrictFloat, Field(gt=0, le=1)]

    @model_validator(mode="after")
    def _weights_sum_to_one(self) -> Stage:
        total = sum(self.weights.values())
        if abs(total - 1.0) > TOLERANCE:
            raise ValueError(f"weights sum to {total:g}, not 1 (stage {self.name!r})")
        return self


@dataclass(frozen=True, config=_TABLE)
class MixtureConfig:
    # Source name -> shard directory written by `mimo train data`; relative paths are read from the base folder.
    sources: Annotated[dict[str, Path], Field(min_length=1)]
    stages: tuple[Stage, ...]

    @field_validator("sources", mode="before")
    @classmethod
    def _from_base_dir(cls, value: Any, info: ValidationInfo) -> Any:
        base = (info.context or {}).get("base_dir")
        if base is None or not isinstance(value, dict):
            return value
        return {
            name: (Path(base) / path).expanduser() if isinstance(path, str) else path for name, path in value.items()
        }

    @field_validator("stages", mode="before")
    @classmethod
    def _default_names(cls, value: Any) -> Any:
        """A stage without a name is called stage0, stage1... by its place in the list."""
        if not isinstance(value, list):
            return value
        return [{"name": f"stage{i}", **raw} if isinstance(raw, dict) else raw for i, raw in enumerate(value)]

    @model_validator(mode="after")
    def _stages_fit_the_sources(self) -> MixtureConfig:
        if not self.stages:
            raise ValueError("stages must list at least one stage ([[stages]] in TOML)")
        for stage in self.stages:
            missing = sorted(set(stage.weights) - set(self.sources))
            if missing:
                raise ValueError(
                    f"stage {stage.name!r} weights source(s) {', '.join(missing)} not listed under sources"
                )
        total = sum(stage.fraction for stage in self.stages)
        if abs(total - 1.0) > TOLERANCE:
            raise ValueError(f"stage fractions sum to {total:g}, not 1")
        return self


_READER = TypeAdapter(MixtureConfig)


def load_mixture(path: Path) -> MixtureConfig:
    """Reads a .toml, .yaml or .yml mixture file; relative source paths are resolved against its folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"mixture file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        table = _parse_toml(text, path)
    elif path.suffix in (".yaml", ".yml"):
        table = _parse_yaml(text, path)
    else:
        raise ConfigError(f"{path}: a mixture file must end in .toml, .yaml or .yml")
    return mixture_from_dict(table, path.parent, where=str(path))


def _parse_toml(text: str, path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def _parse_yaml(text: str, path: Path) -> dict:
    import yaml

    try:
        table = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}".replace("\n", " ")) from None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: expected a mapping with 'sources' and 'stages'")
    return table


def mixture_from_dict(table: Any, base_dir: Path, where: str = "mixture") -> MixtureConfig:
    """Validates a parsed mixture table; every problem is named by its key in one ConfigError."""
    try:
        return _READER.validate_python(table, context={"base_dir": Path(base_dir)})
    except ValidationError as error:
        raise config_error(error, MixtureConfig, where) from None


def schedule(config: MixtureConfig, total_tokens: int) -> list[dict]:
    """Each stage's token range, sequence length and sources (with their token counts), checking every source
    with a non-zero weight opens as a shard directory."""
    rows, start = [], 0.0
    for stage in config.stages:
        end = start + stage.fraction * total_tokens
        sources = {}
        for name, weight in stage.weights.items():
            size = _open_source(name, config.sources[name]).size if weight > 0 else 0
            sources[name] = {"weight": weight, "tokens": size}
        rows.append({"stage": stage.name, "tokens": [round(start), round(end)], "seq_len": stage.seq_len,
                     "sources": sources})  # fmt: skip
        start = end
    return rows


def _open_source(name: str, directory: Path) -> TokenStream:
    if not directory.is_dir():
        raise ConfigError(f"mixture source {name!r}: shard directory {directory} does not exist")
    return open_stream(directory)


class MixtureSampler:
    """Batches of random windows from the stage's sources, drawn by weight; deterministic from (seed, step).

    Each row is `seq_len + 1` consecutive tokens (inputs plus the shifted target) starting at a uniformly random
    offset of a source chosen by the stage's weights; windows may cross document boundaries (separated by
    <|endoftext|>) and wrap around a source's end. Stage i covers the tokens from the sum of the earlier fractions
    to the sum including its own, times `total_tokens`; past the end the last stage continues.
    """

    def __init__(self, config: MixtureConfig, *, batch_size: int, total_tokens: int, seed: int):
        if batch_size < 1 or total_tokens < 1:
            raise ConfigError("mixture sampler: batch_size and total_tokens must be positive")
        self.config = config
        self.batch_size = batch_size
        self.total_tokens = total_tokens
        self.seed = seed
        self.step = 0
        self.tokens_seen = 0
        self._streams: dict[str, TokenStream] = {}
        self._stage_ends = np.cumsum([stage.fraction for stage in config.stages]) * total_tokens

    def stage_at(self, tokens_seen: int) -> Stage:
        index = int(np.searchsorted(self._stage_ends, tokens_seen, side="right"))
        return self.config.stages[min(index, len(self.config.stages) - 1)]

    def next_batch(self) -> tuple[Stage, np.ndarray]:
        stage = self.stage_at(self.tokens_seen)
        rng = np.random.default_rng((self.seed, self.step))
        names = [name for name, weight in stage.weights.items() if weight > 0]
        probabilities = np.array([stage.weights[name] for name in names])
        choices = rng.choice(len(names), size=self.batch_size, p=probabilities / probabilities.sum())
        batch = np.empty((self.batch_size, stage.seq_len + 1), dtype=np.int64)
        for row, choice in enumerate(choices):
            stream = self._stream(names[choice])
            batch[row] = stream.window(int(rng.integers(stream.size)), stage.seq_len + 1)
        self.step += 1
        self.tokens_seen += self.batch_size * stage.seq_len
        return stage, batch

    def _stream(self, name: str) -> TokenStream:
        if name not in self._streams:
            self._streams[name] = _open_source(name, self.config.sources[name])
        return self._streams[name]

    def state_dict(self) -> dict:
        return {"seed": self.seed, "step": self.step, "tokens_seen": self.tokens_seen}

    def load_state_dict(self, state: dict) -> None:
        if state["seed"] != self.seed:
            raise ConfigError(f"sampler state was saved with seed {state['seed']}, this run uses {self.seed}")
        self.step = int(state["step"])
        self.tokens_seen = int(state["tokens_seen"])
