"""`mimo train data`: sources -> filtered, deduplicated, scrubbed, FIM'd, packed, tokenised shards + manifest.

Steps, in order: licence gate per source; file collection with skip rules; exact then near dedup (first occurrence
wins); secret/PII scrub; a deterministic held-out split (by hash of seed, source and path, so adding a source
never moves another's files); per-file FIM; per-source packing in import order; tokenisation into shards. Every
dropped file is counted under its reason; the manifest records it all (format in docs/data.md).

The steps run as a datatrove pipeline (training/data/pipeline.py) on a local, Slurm or Ray executor; the output
is the same whatever the executor, tasks and workers.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from training.data.assemble import EMPTY_REPORT, HELDOUT_DIR, HELDOUT_FILE, clear_previous  # noqa: F401 (re-exported)
from training.data.collect import Source
from training.data.options import BuildOptions, ExecutorOptions
from training.data.shards import MANIFEST
from training.errors import UserError
from training.tokenizer import TokenCodec

__all__ = ["BuildOptions", "ExecutorOptions", "build", "HELDOUT_DIR", "HELDOUT_FILE"]


def build(sources: list[Source], options: BuildOptions, executor: ExecutorOptions | None = None) -> dict | None:
    """Builds the shard directory `options.out` and returns its manifest (None when the stages were submitted to
    Slurm and run later)."""
    from training.data.pipeline import run_pipeline, work_dir

    executor = executor or ExecutorOptions()
    check_inputs(sources, options, executor)
    if not run_pipeline(sources, options, executor):
        return None
    empty = work_dir(options, executor) / EMPTY_REPORT
    if empty.is_file():
        dropped = Counter(json.loads(empty.read_text(encoding="utf-8")))
        raise UserError(f"empty corpus: no file survived the filters (dropped: {_reasons(dropped)}); check the sources")
    return json.loads((Path(options.out) / MANIFEST).read_text(encoding="utf-8"))


def check_inputs(sources: list[Source], options: BuildOptions, executor: ExecutorOptions) -> None:
    if not sources:
        raise UserError("no sources given: name git repositories or folders, or pass --from-installed")
    names = Counter(source.name for source in sources)
    if clashes := [name for name, count in names.items() if count > 1]:
        raise UserError(f"source name(s) {', '.join(clashes)} given twice; name them apart with NAME=PATH")
    if not 0 <= options.holdout_fraction < 1:
        raise UserError(f"--holdout-fraction must be in [0, 1), got {options.holdout_fraction}")
    if not (0 <= options.fim.rate <= 1 and 0 <= options.fim.spm_rate <= 1):
        raise UserError("--fim-rate and --spm-rate must be in [0, 1]")
    if not 0 < options.dedup_threshold < 1:
        raise UserError(f"--dedup-threshold must be between 0 and 1, got {options.dedup_threshold}")
    if executor.workers < 1 or (executor.tasks is not None and executor.tasks < 1):
        raise UserError(f"--workers and --tasks must be at least 1, got {executor.workers} and {executor.tasks}")
    TokenCodec(options.tokenizer)  # a missing or unreadable tokenizer is named before any work starts


def _reasons(dropped: Counter) -> str:
    return ", ".join(f"{reason} {count}" for reason, count in dropped.most_common()) or "none; no files found"
