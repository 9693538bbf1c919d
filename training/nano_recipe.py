"""The whole mimo-nano recipe as the `mimo` commands it runs, in order (`mimo train nano`).

Corpus: the Python standard library (PSF-2.0) plus permissively licensed distributions as installed with
mimo-code (the data step reads each licence from the distribution's metadata and records it in the manifest).
The tokenizer was trained on the first group; the training data adds the larger second group (their Python
sources). Everything is offline.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

NANO_PACKAGES = (
    "rich", "click", "jinja2", "httpx", "typer", "requests", "pygls", "attrs", "pydantic", "starlette",
    "fastapi", "uvicorn", "jsonschema", "datasketch", "pyyaml", "packaging", "idna", "anyio", "h11", "httpcore",
    "filelock", "fsspec", "cattrs", "huggingface-hub", "accelerate", "trl", "peft", "datasets",
)  # fmt: skip
DATA_ONLY_PACKAGES = ("transformers", "torch", "numpy", "networkx", "setuptools", "pip")
VOCAB_SIZE = 8192
TOKENIZER_MAX_MB = 30


def nano_commands(
    work: Path, threads: int, resume: bool = False, total_tokens: int | None = None
) -> list[list[str]]:
    """The `mimo` argument lists of each step; WORK gets tokenizer/, shards/ (with heldout/) and run/."""
    sources = ["installed:stdlib", *(f"installed:{name}" for name in NANO_PACKAGES)]
    # Data-only sources come last: near-duplicate removal keeps the first copy, so they never push a file of
    # the first group (or its held-out split, which hashes source and path) out of the corpus.
    data_sources = [*sources, *(f"installed:{name}" for name in DATA_ONLY_PACKAGES)]
    tokenizer, shards, run = work / "tokenizer", work / "shards", work / "run"
    pretrain = ["train", "pretrain", "--preset", "nano", "--data", str(work), "--out", str(run)]
    pretrain += ["--threads", str(threads)] + (["--resume"] if resume else [])
    pretrain += ["--total-tokens", str(total_tokens)] if total_tokens else []
    return [
        ["train", "tokenizer", *sources, "--out", str(tokenizer), "--vocab-size", str(VOCAB_SIZE),
         "--max-mb", str(TOKENIZER_MAX_MB)],
        ["train", "data", *data_sources, "--out", str(shards), "--tokenizer", str(tokenizer), "--seed", "0"],
        pretrain,
    ]  # fmt: skip


def run_recipe(work: Path, out: Path, threads: int, total_tokens: int | None = None) -> Path:
    """Runs every step (skipping the data steps whose output exists; resuming a started run) and copies the
    trained checkpoint to `out`."""
    work.mkdir(parents=True, exist_ok=True)
    resume = (work / "run" / "checkpoint.pt").is_file()
    tokenizer_step, data_step, pretrain_step = nano_commands(work, threads, resume, total_tokens)
    if not (work / "tokenizer" / "tokenizer.json").is_file():
        _mimo(tokenizer_step)
    if not (work / "shards" / "manifest.json").is_file():
        _mimo(data_step)
    _mimo(pretrain_step)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(work / "run" / "model", out)
    return out


def _mimo(arguments: list[str]) -> None:
    print("$ mimo " + " ".join(arguments), file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "mimo.cli", *arguments], check=True)
