"""The whole `mimo train data` pipeline on real git repositories: filters, licences, dedup, scrub, packing,
held-out split, shards and manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.special_tokens import FILE_SEP, FIM_MIDDLE, FIM_PREFIX, REPO_NAME
from training.data.build import BuildOptions, build
from training.data.collect import source_from_path
from training.data.fim import FimConfig
from training.data.mixture import MixtureSampler, mixture_from_dict
from training.errors import UserError
from training.tokenizer import TokenCodec

MIT_TEXT = "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy...\n"
GPL_TEXT = "GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007\n"


def _module(name: str, lines: int = 40) -> str:
    return "".join(f"def {name}_{i}(x):\n    return x * {i} + {len(name)}\n" for i in range(lines))


@pytest.fixture
def repos(repo_factory):
    core = _module("core")
    app = "from pkg import core\n\n" + _module("app")
    mit = repo_factory(
        "mitrepo",
        {
            "LICENSE": MIT_TEXT,
            "pkg/__init__.py": "",
            "pkg/app.py": app,
            "pkg/core.py": core,
            "pkg/zz_copy.py": core,  # exact duplicate
            "pkg/zz_near.py": core.replace("return x * 3 +", "return x * 33 +"),  # near duplicate
            "pkg/settings.py": 'API_KEY = "AKIAIOSFODNN7EXAMPLE"\nADMIN = "ops@example.com"\n',
            "pkg/icon.py": b"\x89PNG\0\0\0\rIHDR",
            "pkg/legacy.py": "nom = 'caf\u00e9'\n".encode("latin-1"),
        },
    )
    gpl = repo_factory("gplrepo", {"COPYING": GPL_TEXT, "lib.py": _module("lib")})
    return mit, gpl


def _options(tmp_path, tokenizer, **overrides) -> BuildOptions:
    defaults = dict(out=tmp_path / "shards", tokenizer=tokenizer, fim=FimConfig(rate=0.0), holdout_fraction=0.0)
    return BuildOptions(**{**defaults, **overrides})


def _decoded(out, tokenizer) -> str:
    manifest = json.loads((out / "manifest.json").read_text())
    tokens = np.concatenate([np.fromfile(out / s["path"], dtype=manifest["dtype"]) for s in manifest["shards"]])
    return TokenCodec(tokenizer).decode(tokens.tolist())


def test_manifest_counts_every_filter_and_licence(tmp_path, repos, small_tokenizer):
    mit, gpl = repos
    manifest = build([source_from_path(str(mit)), source_from_path(str(gpl))], _options(tmp_path, small_tokenizer))
    assert manifest["sources"]["mitrepo"]["license"] == "MIT"
    assert manifest["sources"]["gplrepo"] == {**manifest["sources"]["gplrepo"], "license": "GPL-3.0-or-later",
                                              "included": False, "tokens": 0}  # fmt: skip
    assert manifest["dropped"] == {
        "binary": 1, "duplicate": 1, "license": 2, "near-duplicate": 1, "non-utf8": 1, "not-code": 1, "empty": 1,
    }  # fmt: skip
    assert manifest["scrubbed"] == {"key": 1, "email": 1}
    assert manifest["files"] == 3 and manifest["languages"]["python"]["files"] == 3
    assert manifest["dtype"] == "uint16"
    assert manifest["total_tokens"] == manifest["sources"]["mitrepo"]["tokens"]
    assert manifest["total_tokens"] == sum(s["tokens"] for s in manifest["shards"])


def test_shards_hold_the_packed_repository_in_import_order(tmp_path, repos, small_tokenizer):
    mit, _ = repos
    build([source_from_path(str(mit))], _options(tmp_path, small_tokenizer))
    text = _decoded(tmp_path / "shards", small_tokenizer)
    assert text.startswith(f"{REPO_NAME}mitrepo\n{FILE_SEP}")
    assert text.index(f"{FILE_SEP}pkg/core.py\n") < text.index(f"{FILE_SEP}pkg/app.py\n")
    assert text.endswith("<|endoftext|>")
    assert "AKIAIOSFODNN7EXAMPLE" not in text and "ops@example.com" not in text
    assert 'API_KEY = "<KEY>"' in text and "<EMAIL>" in text


def test_fim_applies_to_files_inside_the_pack(tmp_path, repos, small_tokenizer):
    mit, _ = repos
    build([source_from_path(str(mit))], _options(tmp_path, small_tokenizer, fim=FimConfig(rate=1.0)))
    text = _decoded(tmp_path / "shards", small_tokenizer)
    assert text.count(FIM_PREFIX) == text.count(FIM_MIDDLE) == 3  # one per kept file


def test_same_seed_gives_identical_shards(tmp_path, repos, small_tokenizer):
    mit, _ = repos
    first = build([source_from_path(str(mit))], _options(tmp_path, small_tokenizer, out=tmp_path / "a",
                                                         fim=FimConfig(rate=0.5), seed=3))  # fmt: skip
    second = build([source_from_path(str(mit))], _options(tmp_path, small_tokenizer, out=tmp_path / "b",
                                                          fim=FimConfig(rate=0.5), seed=3))  # fmt: skip
    assert first["total_tokens"] == second["total_tokens"]
    assert (tmp_path / "a" / "shard-00000.bin").read_bytes() == (tmp_path / "b" / "shard-00000.bin").read_bytes()


def test_held_out_files_are_written_and_kept_out_of_the_shards(tmp_path, repo_factory, small_tokenizer):
    files = {"LICENSE": MIT_TEXT, **{f"m{i}.py": f"VALUE_{i}_MARK = {i}\n" + _module(f"m{i}", 5) for i in range(20)}}
    repo = repo_factory("many", files)
    manifest = build([source_from_path(str(repo))], _options(tmp_path, small_tokenizer, holdout_fraction=0.3))
    held = [json.loads(line) for line in (tmp_path / "shards" / manifest["heldout"]["path"]).read_text().splitlines()]
    assert 0 < len(held) < 20 and manifest["files"] + len(held) == 20
    assert [{"source": r["source"], "path": r["path"]} for r in held] == manifest["heldout"]["files"]
    text = _decoded(tmp_path / "shards", small_tokenizer)
    for record in held:
        assert record["text"].splitlines()[0] not in text
        assert record["language"] == "python"


def test_narrow_allow_list_and_empty_corpus(tmp_path, repos, small_tokenizer):
    _, gpl = repos
    with pytest.raises(UserError, match="empty corpus.*license 2"):
        build([source_from_path(str(gpl))], _options(tmp_path, small_tokenizer))
    with pytest.raises(UserError, match="no sources given"):
        build([], _options(tmp_path, small_tokenizer))


def test_built_shards_feed_the_mixture_sampler(tmp_path, repos, small_tokenizer):
    mit, _ = repos
    build([source_from_path(str(mit))], _options(tmp_path, small_tokenizer))
    table = {"sources": {"code": "shards"}, "stages": [{"name": "all", "fraction": 1, "seq_len": 32,
                                                        "weights": {"code": 1}}]}  # fmt: skip
    sampler = MixtureSampler(mixture_from_dict(table, tmp_path), batch_size=3, total_tokens=1000, seed=0)
    stage, batch = sampler.next_batch()
    assert batch.shape == (3, 33) and batch.max() < 512
