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

from training.errors import UserError

NANO_PACKAGES = (
    "rich", "click", "jinja2", "httpx", "typer", "requests", "pygls", "attrs", "pydantic", "starlette",
    "fastapi", "uvicorn", "jsonschema", "datasketch", "pyyaml", "packaging", "idna", "anyio", "h11", "httpcore",
    "filelock", "fsspec", "cattrs", "huggingface-hub", "accelerate", "trl", "peft", "datasets",
)  # fmt: skip
DATA_ONLY_PACKAGES = ("transformers", "torch", "numpy", "networkx", "setuptools", "pip")
# The packages above that mimo-code itself does not need are its `nano-corpus` extra (pyproject.toml).
CORPUS_EXTRA = "nano-corpus"
VOCAB_SIZE = 8192
MODEL_NAME = "mimo-nano"  # the recipe's model, as its card names it (engine/assets/nano/mimo-card.json)
TOKENIZER_MAX_MB = 30


# Phase 2 (the `nano-continue` preset): the shipped nano went through it twice, each run a full warmup, constant
# and cosine cycle from the previous run's weights; these are the two runs' lengths on the GPU (docs/model-card.md).
PHASE1_TOKENS = 85_721_088  # the `nano` preset's total_tokens
CONTINUE_TOKENS = (76_414_976, 188_481_536)


def nano_commands(work: Path, threads: int, resume: bool = False, total_tokens: int | None = None) -> list[list[str]]:
    """The `mimo` argument lists of each step; WORK gets tokenizer/, shards/ (with heldout/), run/ (phase 1) and
    continue-1/, continue-2/ (phase 2). `total_tokens` sets phase 1's length and scales phase 2's runs along."""
    sources = ["installed:stdlib", *(f"installed:{name}" for name in NANO_PACKAGES)]
    # Data-only sources come last: near-duplicate removal keeps the first copy, so they never push a file of
    # the first group (or its held-out split, which hashes source and path) out of the corpus.
    data_sources = [*sources, *(f"installed:{name}" for name in DATA_ONLY_PACKAGES)]
    tokenizer, shards = work / "tokenizer", work / "shards"
    steps = [
        ["train", "tokenizer", *sources, "--out", str(tokenizer), "--vocab-size", str(VOCAB_SIZE),
         "--max-mb", str(TOKENIZER_MAX_MB)],
        ["train", "data", *data_sources, "--out", str(shards), "--tokenizer", str(tokenizer), "--seed", "0"],
    ]  # fmt: skip
    scale = total_tokens / PHASE1_TOKENS if total_tokens else 1.0
    runs = [("nano", "run", None, total_tokens)]
    previous = "run"
    for index, tokens in enumerate(CONTINUE_TOKENS, 1):
        runs.append(("nano-continue", f"continue-{index}", previous, max(1, round(tokens * scale))))
        previous = f"continue-{index}"
    for preset, run, init_from, tokens in runs:
        step = ["train", "pretrain", "--preset", preset, "--data", str(work), "--out", str(work / run)]
        step += ["--threads", str(threads)] + (["--resume"] if resume and _started(work / run) else [])
        step += ["--init-from", str(work / init_from / "model")] if init_from else []
        step += ["--total-tokens", str(tokens)] if tokens else []
        steps.append(step)
    return steps


def final_run(work: Path) -> Path:
    return work / f"continue-{len(CONTINUE_TOKENS)}"


def _started(run: Path) -> bool:
    return (run / "checkpoint.pt").is_file()


def run_recipe(work: Path, out: Path, threads: int, total_tokens: int | None = None) -> Path:
    """Runs every step (skipping the data steps whose output exists and the runs that finished; resuming a
    started run) and copies the last run's checkpoint to `out`."""
    from training.pretrain import SUMMARY_NAME

    work.mkdir(parents=True, exist_ok=True)
    tokenizer_step, data_step, *pretrain_steps = nano_commands(work, threads, resume=True, total_tokens=total_tokens)
    data_built = (work / "tokenizer" / "tokenizer.json").is_file() and (work / "shards" / "manifest.json").is_file()
    if not data_built and (missing := missing_corpus_packages()):
        raise UserError(
            f"the nano corpus reads the source of installed distributions, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed: pip install -e '.[{CORPUS_EXTRA}]' in a "
            f"checkout (or pip install 'mimo-code[{CORPUS_EXTRA}]')"
        )
    if not (work / "tokenizer" / "tokenizer.json").is_file():
        _mimo(tokenizer_step)
    if not (work / "shards" / "manifest.json").is_file():
        _mimo(data_step)
    for step in pretrain_steps:
        run = Path(step[step.index("--out") + 1])
        if not (run / SUMMARY_NAME).is_file():  # written last, after the whole export
            _mimo(step)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(final_run(work) / "model", out)
    _name_card(out)
    return out


def _name_card(model_dir: Path) -> None:
    """Each run's card is named after the run's folder (`continue-2`); the recipe's result is mimo-nano."""
    from training.model_card import read_card, write_card

    contents = read_card(model_dir)
    if contents is not None:
        write_card(model_dir, contents | {"model": MODEL_NAME})


def missing_corpus_packages() -> list[str]:
    """The corpus's distributions that are not installed (the data step would stop at the first)."""
    import importlib.metadata

    missing = []
    for name in (*NANO_PACKAGES, *DATA_ONLY_PACKAGES):
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def _mimo(arguments: list[str]) -> None:
    print("$ mimo " + " ".join(arguments), file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "mimo.cli", *arguments], check=True)
