"""The five stages of `mimo train data` on one of datatrove's executors: local processes, Slurm jobs or Ray.

Each stage is one datatrove executor that depends on the one before (datatrove runs or submits the chain);
its logs, per-task stats and completion markers are in WORK/logs/STAGE. Near-duplicate detection uses
datatrove's MinHash stages with our code shingles; the LSH bands come from `--dedup-threshold` the way
datasketch chooses them for 128 permutations (its `_optimal_param`, the same choice `mimo train data` made
when dedup ran in one process), so the threshold keeps its meaning.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from pathlib import Path

from datatrove.executor.base import PipelineExecutor
from datatrove.executor.local import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets, MinhashDedupFilter
from datatrove.utils.hashing import HashConfig
from datatrove.utils.logging import logger, setup_default_logger

from training.data.assemble import MergeShards, PackSources
from training.data.collect import Source
from training.data.dedup import NUM_PERM, SHINGLE
from training.data.options import WORK_SUBDIR, BuildOptions, ExecutorOptions
from training.data.progress import progress_bar
from training.data.steps import (
    CodeMinhashSignature,
    FirstOccurrence,
    ReadStaged,
    RepositoryReader,
    ScrubSecrets,
    StageDocuments,
)
from training.errors import UserError

STAGES = ("read", "buckets", "decide", "pack", "merge")


def minhash_config(threshold: float) -> MinhashConfig:
    """Bands × rows for `threshold`, weighing false positives and negatives alike (datasketch's choice)."""
    from datasketch.lsh import _optimal_param

    bands, rows = _optimal_param(threshold, NUM_PERM, 0.5, 0.5)
    # The shingles arrive hashed (training/data/dedup.py), so the hash function is never called; sha1 needs
    # no extra package.
    return MinhashConfig(n_grams=SHINGLE, num_buckets=bands, hashes_per_bucket=rows,
                         hash_config=HashConfig(precision=64, hash_fc="sha1"))  # fmt: skip


def work_dir(options: BuildOptions, executor: ExecutorOptions) -> Path:
    return Path(executor.work_dir) if executor.work_dir else Path(options.out) / WORK_SUBDIR


def stage_pipelines(sources: list[Source], options: BuildOptions, executor: ExecutorOptions, work: str) -> list:
    """(stage name, pipeline, tasks) for the five stages."""
    config = minhash_config(options.dedup_threshold)
    tasks = executor.task_count
    read = [
        RepositoryReader(sources, work, options.licenses, options.max_file_bytes),
        StageDocuments(work),
        CodeMinhashSignature(f"{work}/signatures", config),
    ]
    buckets = [MinhashDedupBuckets(f"{work}/signatures", f"{work}/buckets", config=config)]
    pack = [ReadStaged(work), MinhashDedupFilter(f"{work}/remove"), ScrubSecrets(), PackSources(work, options)]
    merge = [MergeShards(work, options, [source.name for source in sources])]
    return [("read", read, tasks), ("buckets", buckets, config.num_buckets),
            ("decide", [FirstOccurrence(work, tasks)], 1), ("pack", pack, tasks), ("merge", merge, 1)]  # fmt: skip


def run_pipeline(sources: list[Source], options: BuildOptions, executor: ExecutorOptions) -> bool:
    """Runs (local, Ray) or submits (Slurm) the stages; True when the output is written on return."""
    work = work_dir(options, executor)
    if work.exists():
        shutil.rmtree(work)  # datatrove skips tasks marked complete: a previous build's markers must go
    (work / "logs").mkdir(parents=True)
    executors, last = [], None
    for name, pipeline, tasks in stage_pipelines(sources, options, executor, str(work)):
        last = _executor(executor, name, pipeline, tasks, str(work / "logs" / name), last)
        executors.append((name, last))
    if executor.kind == "slurm":
        last.run()  # submits every stage, each job after the one before
        return False
    started_ray = executor.kind == "ray" and _connect_ray(executor.ray_address)
    try:
        _run_in_order(executors, work / "logs" / "console.log")
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return True


def _run_in_order(executors: list, console_log: Path) -> None:
    """One stage after another, with a progress bar on stderr; datatrove's console messages (per-stage stats)
    go to WORK/logs/console.log, each task's full log to WORK/logs/STAGE/logs/."""
    console = sys.stderr
    with progress_bar("data pipeline", len(executors), unit="stages", stream=console) as advance:
        with console_log.open("a", encoding="utf-8") as log, contextlib.redirect_stderr(log):
            setup_default_logger()  # datatrove's console sink was bound to stderr at import: rebind it to the log
            try:
                for _, stage in executors:
                    stage.run()
                    advance(1)
            finally:
                logger.complete()
        setup_default_logger()


def _executor(options: ExecutorOptions, name: str, pipeline: list, tasks: int, logs: str, depends) -> PipelineExecutor:
    workers = max(1, min(options.workers, tasks))
    if options.kind == "local":
        return _LocalExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=logs, depends=depends)
    if options.kind == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        return RayPipelineExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=logs, depends=depends)
    if options.slurm is None:
        raise UserError("--executor slurm needs --slurm-partition")
    from datatrove.executor.slurm import SlurmPipelineExecutor

    slurm = options.slurm
    activate = Path(sys.prefix) / "bin" / "activate"
    return SlurmPipelineExecutor(
        pipeline, tasks=tasks, workers=workers, time=slurm.time, partition=slurm.partition,
        cpus_per_task=slurm.cpus_per_task, mem_per_cpu_gb=slurm.mem_per_cpu_gb, job_name=f"mimo-data-{name}",
        logging_dir=logs, depends=depends, venv_path=str(activate) if activate.is_file() else None,
        sbatch_args=dict(slurm.sbatch_args) or None,
    )  # fmt: skip


class _LocalExecutor(LocalPipelineExecutor):
    """datatrove's local executor with each task's console log at ERROR level (as datatrove does for every
    task but the first); the task's full log is still written to its file."""

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        return super()._run_for_rank(rank, local_rank=local_rank + 1, node_rank=node_rank)


def _connect_ray(address: str | None) -> bool:
    """Joins the cluster at `address` (or RAY_ADDRESS); with neither, Ray starts a local one for this run.
    True when this call connected (so the run disconnects at its end)."""
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'mimo-code[ray]' (ray==2.60.0)") from None
    if ray.is_initialized():
        return False
    ray.init(address=address, log_to_driver=False)
    return True
