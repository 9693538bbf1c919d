"""`mimo train data` and `mimo train mixture` through Typer's CliRunner: success output and bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mimo.cli import app

MIT_TEXT = "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy...\n"


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def _assert_user_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def repo(repo_factory):
    return repo_factory("demo", {"LICENSE": MIT_TEXT, "a.py": "def a():\n    return 1\n", "b.py": "import a\n"})


def test_data_builds_and_prints_json(tmp_path, repo, small_tokenizer):
    out = tmp_path / "shards"
    result = _run("train", "data", str(repo), "--out", str(out), "--tokenizer", str(small_tokenizer), "--json",
                  "--holdout-fraction", "0")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["sources"]["demo"] == {"license": "MIT", "included": True, "files": 2,
                                          "tokens": summary["total_tokens"]}  # fmt: skip
    assert (out / "manifest.json").is_file() and "tokens from 2 files" in result.stderr


def test_missing_source(tmp_path, small_tokenizer):
    result = _run("train", "data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                  "--tokenizer", str(small_tokenizer))  # fmt: skip
    _assert_user_error(result, "nowhere", "is not a directory")


def test_empty_corpus(tmp_path, repo_factory, small_tokenizer):
    empty = repo_factory("binaries", {"LICENSE": MIT_TEXT, "blob.py": b"\0\1\2", "notes.bin": b"x"})
    result = _run("train", "data", str(empty), "--out", str(tmp_path / "o"), "--tokenizer", str(small_tokenizer))
    _assert_user_error(result, "empty corpus", "binary 1")


def test_no_sources_at_all(tmp_path, small_tokenizer):
    result = _run("train", "data", "--out", str(tmp_path / "o"), "--tokenizer", str(small_tokenizer))
    _assert_user_error(result, "no sources given")


def test_missing_tokenizer(tmp_path, repo):
    result = _run("train", "data", str(repo), "--out", str(tmp_path / "o"), "--tokenizer", str(tmp_path))
    _assert_user_error(result, "no tokenizer.json", "mimo train tokenizer")


def test_unknown_installed_distribution(tmp_path, small_tokenizer):
    result = _run("train", "data", "installed:surely-not-installed", "--out", str(tmp_path / "o"),
                  "--tokenizer", str(small_tokenizer))  # fmt: skip
    _assert_user_error(result, "surely-not-installed")


MIXTURE = """
[sources]
code = "shards"
[[stages]]
name = "one"
fraction = 1.0
seq_len = 16
weights = { code = 1.0 }
"""


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (MIXTURE + "\nepochs = 3\n", "unknown key stages[0].epochs; allowed: name, weights, seq_len, fraction"),
        (MIXTURE.replace("code = 1.0", "code = 0.7"), "weights sum to 0.7, not 1"),
        (MIXTURE.replace("seq_len", "seqlen"), "unknown key stages[0].seqlen (did you mean stages[0].seq_len?)"),
        (MIXTURE, "shard directory"),  # valid file, but shards were never built
        ("[sources\n", "not valid TOML"),
    ],
)
def test_bad_mixture_files(tmp_path, text, fragment):
    (tmp_path / "mix.toml").write_text(text)
    _assert_user_error(_run("train", "mixture", str(tmp_path / "mix.toml")), fragment)


def test_mixture_schedule_of_built_shards(tmp_path, repo, small_tokenizer):
    assert _run("train", "data", str(repo), "--out", str(tmp_path / "shards"),
                "--tokenizer", str(small_tokenizer)).exit_code == 0  # fmt: skip
    (tmp_path / "mix.toml").write_text(MIXTURE)
    result = _run("train", "mixture", str(tmp_path / "mix.toml"), "--total-tokens", "500")
    assert result.exit_code == 0, result.output
    (stage,) = json.loads(result.stdout)
    assert stage["tokens"] == [0, 500] and stage["seq_len"] == 16 and stage["sources"]["code"]["tokens"] > 0


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--workers", "0"], ["--workers and --tasks must be at least 1"]),
        (["--executor", "slurm"], ["--executor slurm needs --slurm-partition"]),
        (["--executor", "slurm", "--slurm-partition", "cpu", "--slurm-option", "account"], ["KEY=VALUE", "account"]),
        (["--dedup-threshold", "1.5"], ["--dedup-threshold must be between 0 and 1, got 1.5"]),
    ],
)
def test_bad_pipeline_options(tmp_path, repo, small_tokenizer, extra, fragments):
    result = _run("train", "data", str(repo), "--out", str(tmp_path / "o"), "--tokenizer", str(small_tokenizer), *extra)
    _assert_user_error(result, *fragments)
    assert not (tmp_path / "o").exists()  # nothing started


def test_workers_run_the_same_build_from_the_command_line(tmp_path, repo, small_tokenizer):
    outputs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        result = _run("train", "data", str(repo), "--out", str(out), "--tokenizer", str(small_tokenizer),
                      "--holdout-fraction", "0", "--workers", workers, "--json")  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs.append((out / "shard-00000.bin").read_bytes())
        assert (out / "pipeline" / "logs" / "read" / "stats.json").is_file()
    assert outputs[0] == outputs[1]
