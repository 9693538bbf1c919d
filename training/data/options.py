"""What a `mimo train data` build is asked to do: plain frozen dataclasses, checked at the command line's edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from training.data.dedup import DEFAULT_THRESHOLD
from training.data.filters import DEFAULT_MAX_BYTES
from training.data.fim import FimConfig
from training.data.licenses import DEFAULT_ALLOWED
from training.data.shards import DEFAULT_SHARD_TOKENS

WORK_SUBDIR = "pipeline"  # OUT/pipeline: datatrove's logs and the stages' intermediate files


@dataclass(frozen=True)
class BuildOptions:
    out: Path
    tokenizer: Path
    licenses: frozenset[str] = frozenset(DEFAULT_ALLOWED)
    fim: FimConfig = FimConfig()
    seed: int = 0
    holdout_fraction: float = 0.02
    dedup_threshold: float = DEFAULT_THRESHOLD
    max_file_bytes: int = DEFAULT_MAX_BYTES
    shard_tokens: int = DEFAULT_SHARD_TOKENS


@dataclass(frozen=True)
class SlurmOptions:
    partition: str
    time: str = "24:00:00"  # per task, as sbatch --time takes it
    cpus_per_task: int = 1
    mem_per_cpu_gb: int = 2
    sbatch_args: dict[str, str] = field(default_factory=dict)  # more #SBATCH directives (account, qos, ...)


@dataclass(frozen=True)
class ExecutorOptions:
    """Which datatrove executor runs the stages, and how wide. `tasks` splits the sources (a source's files
    stay in one task); `workers` is how many tasks run at once. Neither changes the output."""

    kind: Literal["local", "slurm", "ray"] = "local"
    workers: int = 1
    tasks: int | None = None  # None: as many as workers
    work_dir: Path | None = None  # None: OUT/pipeline; on a cluster it must be storage every node sees
    slurm: SlurmOptions | None = None
    ray_address: str | None = None  # None: RAY_ADDRESS, else a local Ray cluster started for the run

    @property
    def task_count(self) -> int:
        return self.tasks or self.workers
