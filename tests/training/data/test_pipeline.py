"""`mimo train data` as a datatrove pipeline: the output does not depend on the executor, the number of tasks or
workers; the first occurrence of a copy wins in command-line order; Slurm jobs are chained as datatrove submits
them (run here by a stand-in scheduler); Ray on a local cluster gives the same shards."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from training.data.build import build
from training.data.collect import source_from_path
from training.data.fim import FimConfig
from training.data.options import BuildOptions, ExecutorOptions, SlurmOptions
from training.data.pipeline import minhash_config

MIT_TEXT = "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy...\n"
GPL_TEXT = "GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007\n"


def _module(name: str, lines: int = 30) -> str:
    return "".join(f"def {name}_{i}(x):\n    return x * {i} + {len(name)}\n" for i in range(lines))


@pytest.fixture
def sources(repo_factory):
    shared = _module("shared")
    alpha = {"LICENSE": MIT_TEXT, "pkg/__init__.py": "", "pkg/shared.py": shared,
             "pkg/app.py": "from pkg import shared\n" + _module("app"), "README.md": "# alpha\n",
             **{f"pkg/m{i}.py": f"import pkg.m{i + 1}\n" + _module(f"m{i}", 8) for i in range(12)}}  # fmt: skip
    beta = {"LICENSE": MIT_TEXT, "copy.py": shared,  # an exact copy of alpha's file: alpha's comes first
            "near.py": shared.replace("return x * 3 +", "return x * 33 +"),  # a near copy
            "keys.py": 'TOKEN = "ghp_' + "a1B2" * 9 + '"\nWHO = "dev@example.com"\n', "main.js": "export const x = 1;\n"}  # fmt: skip
    gamma = {"COPYING": GPL_TEXT, "lib.py": _module("lib")}
    roots = [repo_factory(name, files) for name, files in (("alpha", alpha), ("beta", beta), ("gamma", gamma))]
    return [source_from_path(str(root)) for root in roots]


def _options(out: Path, tokenizer: Path) -> BuildOptions:
    return BuildOptions(out=out, tokenizer=tokenizer, fim=FimConfig(rate=0.5, chunk_chars=200), seed=7,
                        holdout_fraction=0.2, shard_tokens=700)  # fmt: skip


def _files(out: Path) -> dict[str, bytes]:
    return {path.relative_to(out).as_posix(): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()
            and "pipeline" not in path.parts}  # fmt: skip


def test_lsh_bands_follow_the_threshold():
    loose, default, strict = (minhash_config(t) for t in (0.5, 0.8, 0.9))
    assert (default.num_buckets, default.hashes_per_bucket) == (9, 13)
    assert loose.hashes_per_bucket < default.hashes_per_bucket < strict.hashes_per_bucket
    assert all(c.num_buckets * c.hashes_per_bucket <= 128 for c in (loose, default, strict))


def test_one_worker_writes_the_manifest_and_keeps_first_occurrences(tmp_path, sources, small_tokenizer):
    manifest = build(sources, _options(tmp_path / "one", small_tokenizer))
    assert list(manifest["sources"]) == ["alpha", "beta", "gamma"]
    beta = manifest["sources"]["beta"]
    assert beta["dropped"] == {"duplicate": 1, "near-duplicate": 1, "not-code": 1}
    alpha_dropped = {"not-code": 1, "empty": 1}  # LICENSE, pkg/__init__.py
    assert manifest["sources"]["alpha"]["dropped"] == alpha_dropped
    assert manifest["sources"]["gamma"]["dropped"] == {"license": 2}
    assert manifest["scrubbed"] == {"key": 1, "email": 1}
    assert len(manifest["shards"]) > 1 and manifest["total_tokens"] == sum(s["tokens"] for s in manifest["shards"])
    held = manifest["heldout"]["files"]
    assert held and manifest["files"] + len(held) == 15 + 2  # alpha's 15, beta's keys.py and main.js
    assert not (tmp_path / "one" / "pipeline" / "staged").exists()  # intermediate files are gone

    # the other order: beta's copy is now the first occurrence, alpha's file is the duplicate
    reordered = build([sources[1], sources[0]], _options(tmp_path / "swapped", small_tokenizer))
    assert reordered["sources"]["beta"]["dropped"] == {"near-duplicate": 1, "not-code": 1}  # near.py after copy.py
    assert reordered["sources"]["alpha"]["dropped"] == {**alpha_dropped, "duplicate": 1}


@pytest.mark.slow
def test_several_workers_write_the_same_shards_as_one(tmp_path, sources, small_tokenizer):
    one = build(sources, _options(tmp_path / "one", small_tokenizer))
    many = build(sources, _options(tmp_path / "many", small_tokenizer), ExecutorOptions(workers=2, tasks=3))
    assert json.dumps(one, sort_keys=True) == json.dumps(many, sort_keys=True).replace("/many", "/one")
    assert _files(tmp_path / "one") == _files(tmp_path / "many")
    logs = tmp_path / "many" / "pipeline" / "logs"
    assert sorted(p.name for p in (logs / "read" / "completions").iterdir()) == ["00000", "00001", "00002"]


@pytest.mark.slow
def test_slurm_stages_are_chained_jobs(tmp_path, sources, small_tokenizer, monkeypatch):
    """datatrove's Slurm executor writes and submits one job array per stage, each after the one before. A
    stand-in `sbatch` records each submission and runs the job's array tasks at once (no scheduler here);
    `srun` runs its command, `scontrol` names this host."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(SBATCH)
    (bin_dir / "srun").write_text('#!/bin/bash\nwhile [ "$1" != launch_pickled_pipeline ]; do shift; done\nexec "$@"\n')
    (bin_dir / "scontrol").write_text("#!/bin/bash\necho localhost\n")  # `scontrol show hostnames`
    for name in ("sbatch", "srun", "scontrol"):
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}")
    monkeypatch.setenv("SBATCH_LOG", str(tmp_path / "sbatch.log"))
    slurm = SlurmOptions(partition="cpu", time="01:00:00", sbatch_args={"account": "mimo"})
    executor = ExecutorOptions(kind="slurm", workers=2, tasks=2, slurm=slurm)
    assert build(sources, _options(tmp_path / "slurm", small_tokenizer), executor) is None

    calls = (tmp_path / "sbatch.log").read_text().splitlines()
    scripts = [Path(f"{tmp_path}/sbatch.log.{n}.sh").read_text() for n in range(1, len(calls) + 1)]
    stages = [s for s in scripts if "launch_pickled_pipeline" in s]
    assert [s.split("--job-name=")[1].split()[0] for s in stages] == [f"mimo-data-{n}" for n in
                                                                      ("read", "buckets", "decide", "pack", "merge")]  # fmt: skip
    assert all("--partition=cpu" in s and "--time=01:00:00" in s and "--account=mimo" in s for s in stages)
    assert "--array=0-1%2" in stages[0] and "--array=0-8%2" in stages[1] and "--array=0-0" in stages[2]
    assert f"source {sys.prefix}/bin/activate" in stages[0]
    assert sum("--dependency=afterok:" in call for call in calls) >= 4
    local = build(sources, _options(tmp_path / "local", small_tokenizer))
    assert _files(tmp_path / "slurm") == _files(tmp_path / "local")
    assert local["total_tokens"] > 0


SBATCH = r"""#!/bin/bash
# Stand-in for Slurm's sbatch: record the call and script, run the array's tasks now, one after another.
script="${@: -1}"
echo "$*" >> "$SBATCH_LOG"
number=$(wc -l < "$SBATCH_LOG")
cp "$script" "$SBATCH_LOG.$number.sh"
last=$(grep -oP '(?<=#SBATCH --array=0-)[0-9]+' "$script" || echo 0)
for task in $(seq 0 "$last"); do
    SLURM_ARRAY_TASK_ID=$task RUN_OFFSET=0 SLURM_NODELIST=localhost SLURM_JOB_ID=$number \
        bash "$script" >> "$SBATCH_LOG.out" 2>&1 || { echo "task $task failed" >&2; exit 1; }
done
echo "Submitted batch job $number"
"""


@pytest.mark.slow
def test_ray_on_a_local_cluster_writes_the_same_shards(tmp_path, sources, small_tokenizer):
    local = build(sources, _options(tmp_path / "local", small_tokenizer))
    started = time.perf_counter()
    on_ray = build(sources, _options(tmp_path / "ray", small_tokenizer), ExecutorOptions(kind="ray", workers=2))
    print(f"ray build: {time.perf_counter() - started:.1f} s")
    assert on_ray["total_tokens"] == local["total_tokens"]
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")
