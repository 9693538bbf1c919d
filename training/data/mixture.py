"""The staged data mixture: which shard directories feed each training stage, in what proportion, at what length.

MiMo pretrains in three stages (broad mix; code and math raised to ~70 %; synthetic reasoning with longer
sequences). A mixture file names the sources and the stages; `MixtureSampler` turns it into batches. Every batch's
randomness is derived from (seed, step), so the sampler's whole state is two integers and a resumed run sees
exactly the batches an uninterrupted one would. See docs/data.md for the file format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.shards import TokenStream, open_stream
from training.errors import ConfigError

TOLERANCE = 1e-6
_TOP_KEYS = {"sources", "stages"}
_STAGE_KEYS = {"name", "weights", "seq_len", "fraction"}


@dataclass(frozen=True)
class Stage:
    name: str
    weights: dict[str, float]  # source name -> weight; sums to 1
    seq_len: int
    fraction: float  # fraction of the run's total tokens spent in this stage; fractions sum to 1


@dataclass(frozen=True)
class MixtureConfig:
    sources: dict[str, Path]  # source name -> shard directory written by `mimo train data`
    stages: tuple[Stage, ...]


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
    return mixture_from_dict(table, path.parent)


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


def mixture_from_dict(table: dict, base_dir: Path) -> MixtureConfig:
    """Validates a parsed mixture table. Every problem is a ConfigError that names the key at fault."""
    _reject_unknown(table, _TOP_KEYS, "mixture")
    sources = _sources(table.get("sources"), Path(base_dir))
    raw_stages = table.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ConfigError("mixture: 'stages' must be a non-empty list of tables ([[stages]] in TOML)")
    stages = tuple(_stage(raw, index, sources) for index, raw in enumerate(raw_stages))
    total_fraction = sum(stage.fraction for stage in stages)
    if abs(total_fraction - 1.0) > TOLERANCE:
        raise ConfigError(f"mixture: stage fractions sum to {total_fraction:g}, not 1")
    return MixtureConfig(sources=sources, stages=stages)


def _reject_unknown(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _sources(raw, base_dir: Path) -> dict[str, Path]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError("mixture: 'sources' must be a table of name = shard directory")
    sources = {}
    for name, location in raw.items():
        if not isinstance(location, str):
            raise ConfigError(f"mixture: source {name!r} must be a path string, got {location!r}")
        sources[str(name)] = (base_dir / location).expanduser()
    return sources


def _stage(raw, index: int, sources: dict[str, Path]) -> Stage:
    if not isinstance(raw, dict):
        raise ConfigError(f"mixture: stage {index} must be a table")
    name = str(raw.get("name", f"stage{index}"))
    where = f"mixture stage {name!r}"
    _reject_unknown(raw, _STAGE_KEYS, where)
    for key in ("weights", "seq_len", "fraction"):
        if key not in raw:
            raise ConfigError(f"{where}: missing '{key}'")
    weights = _weights(raw["weights"], sources, where)
    seq_len, fraction = raw["seq_len"], raw["fraction"]
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < 1:
        raise ConfigError(f"{where}: seq_len must be a positive integer, got {seq_len!r}")
    if not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ConfigError(f"{where}: fraction must be in (0, 1], got {fraction!r}")
    return Stage(name=name, weights=weights, seq_len=seq_len, fraction=float(fraction))


def _weights(raw, sources: dict[str, Path], where: str) -> dict[str, float]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: 'weights' must be a table of source = weight")
    missing = sorted(set(raw) - set(sources))
    if missing:
        raise ConfigError(f"{where}: weights name source(s) {', '.join(missing)} not listed under [sources]")
    weights = {}
    for source, weight in raw.items():
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0 or not math.isfinite(weight):
            raise ConfigError(f"{where}: weight of {source!r} must be a non-negative number, got {weight!r}")
        weights[source] = float(weight)
    total = sum(weights.values())
    if abs(total - 1.0) > TOLERANCE:
        raise ConfigError(f"{where}: weights sum to {total:g}, not 1")
    return weights


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
