"""The whole `mimo train repo` run: data, the base model's figures, training, export, the retrained figures.

OUT/ after a run:
    data/         train-K/ shards, validation.jsonl, heldout.jsonl, rejected.jsonl, data.json
    checkpoint.pt the resumable state (see trainer.py)
    before.json   the base model on the held-out files (kept, so --resume does not measure it again)
    model/        the retrained model: what `--model OUT/model` loads everywhere (for LoRA: merged), with its
                  mimo-card.json: the base model's languages and the repository's
    adapter/      LoRA only: the PEFT adapter (for vLLM's --enable-lora, or PEFT on top of the base)
    report.json   {"base", "model", "before", "after", "change", "data", "training"}
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from training.data.shards import read_manifest
from training.errors import UserError
from training.model_card import manifest_languages, repo_card, write_card
from training.repo import dataset, trainer, tuning
from training.repo.progress import TrainProgress
from training.repo.sources import resolve_sources

REPORT = "report.json"
BEFORE = "before.json"
SCORE_TOKENS = 1024  # the loss filter reads each file's first 1,024 tokens
EXPORT_SECONDS = 15.0  # kept back from the training budget for saving the model


@dataclass(frozen=True)
class RepoOptions:
    sources: tuple[str, ...]
    out: Path
    base: str = "nano"
    spec: tuning.TuneSpec = field(default_factory=tuning.TuneSpec)
    train: trainer.TrainOptions = field(default_factory=trainer.TrainOptions)
    held_out: float = 0.1
    validation: float = 0.1
    fim_variants: int = 4
    max_minutes: float | None = 15.0
    resume: bool = False
    loss_filter: bool = True
    eval_points: int = 200
    save_dtype: str = "bfloat16"
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise UserError(f"--max-minutes must be positive, got {self.max_minutes}")
        if self.eval_points < 1:
            raise UserError(f"--eval-points must be at least 1, got {self.eval_points}")


def run(options: RepoOptions, say=lambda message: None) -> dict:
    """Runs every step; returns the report (also written to OUT/report.json)."""
    import engine.model  # noqa: F401  (registers MiMo with the Auto classes before any tokenizer loads)
    from engine.registry import resolve_model

    started = time.monotonic()
    deadline = started + options.max_minutes * 60 if options.max_minutes else None
    base_dir = resolve_model(options.base)
    out = Path(options.out)
    _check_out(out, options.resume)
    out.mkdir(parents=True, exist_ok=True)
    summary = _data(options, base_dir, out / "data", say)
    tokenizer = _tokenizer(base_dir)
    heldout = _jsonl_files(out / "data" / dataset.HELDOUT_FILE)
    before = _before(options, base_dir, heldout, out, say)
    train_deadline = None if deadline is None else deadline - before["seconds"] - EXPORT_SECONDS
    model, state = _train(options, base_dir, tokenizer, summary, out, train_deadline, say)
    paths = tuning.export(model, tokenizer, options.spec, base_dir, out, options.save_dtype)
    _write_card(Path(paths["model"]), out, base_dir, summary)
    say(f"exported {paths['model']}; measuring it on the held-out files")
    after = _evaluate(paths["model"], heldout, options)
    report = _report(options, base_dir, paths, before, after, summary, state, model, time.monotonic() - started)
    (out / REPORT).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _write_card(model_dir: Path, out: Path, base_dir: Path, summary: dict) -> None:
    """OUT/model's mimo-card.json: the base model's languages and the repository's (an older run's data.json,
    resumed, has none recorded: its training shards' manifest does)."""
    languages = summary.get("languages")
    if languages is None:
        languages = manifest_languages(read_manifest(out / "data" / "train-0")) or set()
    write_card(model_dir, repo_card(out.resolve().name, base_dir, languages))


def _check_out(out: Path, resume: bool) -> None:
    if resume and not (out / trainer.CHECKPOINT).is_file():
        raise UserError(f"--resume: no {trainer.CHECKPOINT} in {out}; start without --resume")
    if not resume and (out / trainer.CHECKPOINT).is_file():
        raise UserError(f"{out} holds a run already: add --resume to continue it, or give another --out")


def _data(options: RepoOptions, base_dir: Path, data_dir: Path, say) -> dict:
    if options.resume and (data_dir / dataset.SUMMARY_FILE).is_file():
        return json.loads((data_dir / dataset.SUMMARY_FILE).read_text(encoding="utf-8"))
    data_options = dataset.DataOptions(
        out=data_dir, tokenizer=base_dir, held_out=options.held_out, validation=options.validation,
        fim_variants=options.fim_variants,
    )  # fmt: skip
    unpack_dir = Path(tempfile.mkdtemp(prefix="mimo-repo-"))
    try:
        resolved = resolve_sources(list(options.sources), unpack_dir)
        score = _scorer(base_dir) if options.loss_filter else None
        summary = dataset.prepare(resolved.sources, resolved.rejected, data_options, score)
    finally:
        shutil.rmtree(unpack_dir, ignore_errors=True)
    rejected = ", ".join(f"{reason} {count}" for reason, count in summary["rejected"].items()) or "none"
    say(
        f"data: {summary['train_files']} training files ({summary['train_tokens']:,} tokens), "
        f"{len(summary['validation_files'])} validation, {len(summary['heldout_files'])} held out; "
        f"rejected: {rejected} (listed in {data_dir / dataset.REJECTED_FILE})"
    )
    return summary


def _scorer(base_dir: Path):
    """The base model's loss per token on each file's first SCORE_TOKENS tokens (None when too short to judge)."""
    from training.completion_model import CompletionModel
    from training.evaluate import EvalOptions
    from training.repo.loss_filter import MIN_TOKENS

    lm = CompletionModel(tuning.load_base(base_dir).eval(), _tokenizer(base_dir))
    window = EvalOptions(acceptance_tokens=SCORE_TOKENS)

    def score(texts: list[str]) -> list[float | None]:
        stats = [lm.heldout_stats([text], window) for text in texts]
        return [s.loss if s.loss_tokens >= MIN_TOKENS else None for s in stats]

    return score


def _tokenizer(base_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base_dir))


def _jsonl_files(path: Path) -> list[tuple[str, str]]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(record["path"], record["text"]) for record in records]


def _evaluate(model: str, files: list[tuple[str, str]], options: RepoOptions) -> dict:
    from training.completion_model import CompletionModel
    from training.evaluate import EvalOptions, evaluate_loaded

    if not files:
        raise UserError("no held-out files survived the filters; raise --held-out or add files")
    report = evaluate_loaded(
        CompletionModel.load(str(model)), str(model), files, EvalOptions(points=options.eval_points)
    )
    return report.as_dict()


def _before(options: RepoOptions, base_dir: Path, heldout, out: Path, say) -> dict:
    if options.resume and (out / BEFORE).is_file():
        return json.loads((out / BEFORE).read_text(encoding="utf-8"))
    say(f"measuring the base model {options.base} on {len(heldout)} held-out files")
    before = _evaluate(str(base_dir), heldout, options)
    (out / BEFORE).write_text(json.dumps(before, indent=2) + "\n", encoding="utf-8")
    return before


def _train(options: RepoOptions, base_dir: Path, tokenizer, summary: dict, out: Path, deadline, say):
    from training.data.mixture import MixtureSampler, mixture_from_dict

    data_dir = out / "data"
    variants = {f"fim-{k}": str((data_dir / f"train-{k}").resolve()) for k in range(summary["fim"]["variants"])}
    weights = {name: 1.0 / len(variants) for name in variants}
    stage = {"name": "repo", "fraction": 1.0, "seq_len": options.train.seq_len, "weights": weights}
    mixture = mixture_from_dict({"sources": variants, "stages": [stage]}, data_dir)
    sampler = MixtureSampler(mixture, batch_size=options.train.batch_size, total_tokens=2**62, seed=options.train.seed)
    import torch

    torch.manual_seed(options.train.seed)  # LoRA's random init: the same run twice gives the same model
    model = tuning.prepare_model(tuning.load_base(base_dir), options.spec)
    validation = [text for _, text in _jsonl_files(data_dir / dataset.VALIDATION_FILE)]
    counts = tuning.parameter_counts(model)
    say(
        f"training {counts['trained']:,} of {counts['total']:,} parameters ({options.spec.method}, MTP {options.spec.mtp})"
    )
    with TrainProgress(summary["train_tokens"], show=options.show_progress) as progress:
        loop = trainer.Loop(model, tokenizer, sampler, summary["train_tokens"], validation, options.train, out,
                            deadline, progress)  # fmt: skip
        state, best = trainer.train(loop, options.resume)
    tuning.load_trainable(model, best)
    say(f"stopped ({state.stopped}) after {state.step} steps; best validation loss {state.best_loss:.4f} at step "
        f"{state.best_step}")  # fmt: skip
    return model.eval(), state


def _report(options, base_dir, paths, before, after, summary, state, model, seconds) -> dict:
    change = {}
    if before.get("loss") and after.get("loss"):
        change["loss_percent"] = round(100 * (after["loss"] - before["loss"]) / before["loss"], 2)
    for key in ("exact_match", "edit_similarity", "mtp_acceptance"):
        if before.get(key) is not None and after.get(key) is not None:
            change[key] = round(after[key] - before[key], 4)
    return {
        "base": str(base_dir),
        "model": paths["model"],
        "adapter": paths.get("adapter"),
        "before": before,
        "after": after,
        "change": change,
        "data": summary,
        "training": {
            "method": options.spec.method,
            "mtp": options.spec.mtp,
            "stopped": state.stopped,
            "steps": state.step,
            "tokens": state.tokens,
            "passes": round(state.tokens / max(1, summary["train_tokens"]), 2),
            "best_step": state.best_step,
            "best_validation_loss": state.best_loss,
            "evals": state.evals,
            "parameters": tuning.parameter_counts(model),
            "spec": asdict(options.spec),
            "options": asdict(options.train),
        },  # fmt: skip
        "seconds": round(seconds, 1),
    }
