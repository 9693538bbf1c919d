"""The repository's data: the pipeline's filters, the three-way split, the loss filter with a real model."""

from __future__ import annotations

import json
import random

import numpy as np

from engine.registry import resolve_model
from tests.training.repo.conftest import git
from training.data.collect import Document
from training.data.shards import open_stream, read_manifest
from training.repo import dataset
from training.repo.run import _scorer
from training.repo.sources import resolve_sources


def _options(tmp_path, **changes):
    return dataset.DataOptions(out=tmp_path / "data", tokenizer=resolve_model("nano"), fim_variants=2, **changes)


def test_split_is_stable_disjoint_and_never_leaves_a_part_empty():
    documents = [Document("src", f"m{i}.py", "python", f"x = {i}\n") for i in range(40)]
    options = dataset.DataOptions(out=None, tokenizer=None, held_out=0.1, validation=0.1)
    train, validation, heldout = dataset.split(documents, options)
    assert len(train) + len(validation) + len(heldout) == 40
    assert not {d.path for d in heldout} & {d.path for d in validation}
    assert dataset.split(list(reversed(documents)), options)[2] == heldout[::1] or {
        d.path for d in dataset.split(list(reversed(documents)), options)[2]
    } == {d.path for d in heldout}
    few = documents[:3]
    train, validation, heldout = dataset.split(few, dataset.DataOptions(out=None, tokenizer=None, held_out=0.01,
                                                                        validation=0.01))  # fmt: skip
    assert len(train) == 1 and len(validation) == 1 and len(heldout) == 1


def test_every_rejected_file_is_listed_with_its_reason_and_the_base_model_rejects_noise(code_repo, tmp_path):
    rng = random.Random(1)
    lines = ["".join(rng.choice("qwxzjkv0123456789") for _ in range(70)) for _ in range(80)]
    (code_repo / "pkg" / "table.py").write_text("TABLE = '''\n" + "\n".join(lines) + "\n'''\n")
    git(code_repo, "add", "pkg/table.py")
    git(code_repo, "commit", "-q", "-m", "a table")
    resolved = resolve_sources([str(code_repo)], tmp_path / "unpack")
    summary = dataset.prepare(resolved.sources, resolved.rejected, _options(tmp_path), _scorer(resolve_model("nano")))
    rejected = [json.loads(line) for line in (tmp_path / "data" / "rejected.jsonl").read_text().splitlines()]
    reasons = {r["path"]: r["reason"] for r in rejected}
    assert reasons["vendor/lib.py"] == "vendored"
    assert reasons["pkg/image.py"] == "binary"
    assert reasons["pkg/blob.py"] == "minified"
    assert reasons["pkg/mod0.py"] == "duplicate"  # copy.py comes first in path order and wins
    assert reasons["pkg/table.py"] == "loss-high"  # random characters: the rule filters let it through
    table = next(r for r in rejected if r["path"] == "pkg/table.py")
    assert table["stage"] == "loss" and "median" in table["detail"]
    assert summary["rejected"]["loss-high"] == 1 and "untracked.py" not in reasons
    kept = summary["train_files"] + len(summary["validation_files"]) + len(summary["heldout_files"])
    assert kept == 15  # __init__ (too short to judge), copy and mod1..mod13


def test_training_shards_pack_the_files_with_a_different_fim_cut_per_variant(code_repo, tmp_path):
    resolved = resolve_sources([str(code_repo)], tmp_path / "unpack")
    summary = dataset.prepare(resolved.sources, resolved.rejected, _options(tmp_path), None)
    first, second = (np.asarray(open_stream(tmp_path / "data" / f"train-{k}").window(0, 10_000)) for k in (0, 1))
    assert read_manifest(tmp_path / "data" / "train-0")["files"] == summary["train_files"]
    assert not np.array_equal(first[: len(second)], second[: len(first)])  # other FIM cuts
    heldout = [json.loads(line) for line in (tmp_path / "data" / "heldout.jsonl").read_text().splitlines()]
    assert {record["path"] for record in heldout} == set(summary["heldout_files"])
    assert all("<|fim_prefix|>" not in record["text"] for record in heldout)  # held-out text is plain
