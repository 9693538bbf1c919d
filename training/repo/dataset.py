"""The repository's files -> training shards, validation and held-out files, and the list of every rejection.

The steps of `mimo train data` (docs/data.md) in the same order, with the same functions: file filters,
exact and near dedup, secret scrubbing, FIM, import-order packing. What differs for a user's own repository:
- no licence gate (the code is the user's own; the detected licence is only recorded);
- a three-way split by file: held-out (the before/after evaluation), validation (early stopping) and training,
  stable by hash of (seed, source, path) like `mimo train data`'s, with at least one file in each of the
  first two when the repository has three or more;
- the second filter by the base model's loss per file (loss_filter.py), over all three parts;
- every rejected file is listed with its stage and reason in `rejected.jsonl`;
- `fim_variants` copies of the training files, each with its own FIM cuts (seed + k): the trainer's later
  passes see other cut points instead of the same examples again.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.special_tokens import END_OF_TEXT
from training.data.collect import Document, Source, collect
from training.data.dedup import DEFAULT_THRESHOLD, Deduplicator
from training.data.filters import DEFAULT_MAX_BYTES
from training.data.fim import FimConfig, Special, fim_pieces
from training.data.licenses import from_directory
from training.data.pack import pack_repository
from training.data.scrub import scrub
from training.data.shards import ShardWriter
from training.errors import UserError
from training.repo import loss_filter
from training.repo.sources import Rejection
from training.tokenizer import TokenCodec

HELDOUT_FILE = "heldout.jsonl"
VALIDATION_FILE = "validation.jsonl"
REJECTED_FILE = "rejected.jsonl"
SUMMARY_FILE = "data.json"

Scorer = Callable[[list[str]], list[float | None]]  # texts -> the base model's loss per token (None: too short)


@dataclass(frozen=True)
class DataOptions:
    out: Path
    tokenizer: Path  # a folder with tokenizer.json: the base model's
    held_out: float = 0.1
    validation: float = 0.1
    seed: int = 0
    fim: FimConfig = FimConfig()
    fim_variants: int = 4
    dedup_threshold: float = DEFAULT_THRESHOLD
    max_file_bytes: int = DEFAULT_MAX_BYTES


@dataclass
class Prepared:
    train: list[Document] = field(default_factory=list)
    validation: list[Document] = field(default_factory=list)
    heldout: list[Document] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    scrubbed: Counter = field(default_factory=Counter)
    licenses: dict[str, str] = field(default_factory=dict)


def prepare(sources: list[Source], rejected: list[Rejection], options: DataOptions, score: Scorer | None) -> dict:
    """Runs every step and writes OUT: train-K/ shard folders, validation.jsonl, heldout.jsonl,
    rejected.jsonl and data.json (the summary, also returned)."""
    _check(options)
    prepared = Prepared(rejected=list(rejected))
    documents = _collect(sources, prepared)
    kept = _dedup_and_scrub(documents, prepared, options.dedup_threshold)
    prepared.train, prepared.validation, prepared.heldout = split(kept, options)
    if score is not None:
        _loss_filter(prepared, score)
    if not prepared.train:
        reasons = Counter(rejection.reason for rejection in prepared.rejected)
        listed = ", ".join(f"{reason} {count}" for reason, count in reasons.most_common()) or "no code files found"
        raise UserError(f"nothing left to train on (rejected: {listed}); check the sources")
    options.out.mkdir(parents=True, exist_ok=True)
    codec = TokenCodec(options.tokenizer)
    tokens = [_write_shards(prepared.train, codec, options, variant) for variant in range(options.fim_variants)]
    _write_jsonl(options.out / VALIDATION_FILE, [_record(d) for d in prepared.validation])
    _write_jsonl(options.out / HELDOUT_FILE, [_record(d) for d in prepared.heldout])
    _write_jsonl(options.out / REJECTED_FILE, [r.as_dict() for r in prepared.rejected])
    summary = _summary(prepared, tokens[0], options)
    (options.out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _check(options: DataOptions) -> None:
    if not (0 < options.held_out < 1 and 0 < options.validation < 1 and options.held_out + options.validation < 1):
        raise UserError(
            f"--held-out ({options.held_out}) and the validation fraction ({options.validation}) must each lie "
            "in (0, 1) and leave files to train on"
        )
    if options.fim_variants < 1:
        raise UserError(f"fim variants must be at least 1, got {options.fim_variants}")


def _collect(sources: list[Source], prepared: Prepared) -> list[Document]:
    documents = []
    for source in sources:
        license = source.license or from_directory(source.root)
        prepared.licenses[source.name] = license.spdx

        def dropped(path: str, reason: str, name=source.name) -> None:
            prepared.rejected.append(Rejection(name, path, reason, "filter"))

        documents.extend(collect(source, on_drop=dropped).documents)
    return documents


def _dedup_and_scrub(documents: list[Document], prepared: Prepared, threshold: float) -> list[Document]:
    deduplicator, kept = Deduplicator(threshold), []
    for document in documents:
        if reason := deduplicator.check(document.text):
            prepared.rejected.append(Rejection(document.source, document.path, reason, "dedup"))
            continue
        result = scrub(document.text)
        prepared.scrubbed.update(result.counts)
        kept.append(Document(document.source, document.path, document.language, result.text))
    return kept


def split(documents: list[Document], options: DataOptions) -> tuple[list[Document], list[Document], list[Document]]:
    """(train, validation, held-out) by a stable hash of (seed, source, path). With three or more files each of
    the two evaluation parts gets at least one: the files with the lowest hashes."""
    ranked = sorted(documents, key=lambda document: (_position(document, options.seed), document.path))
    heldout = [d for d in ranked if _position(d, options.seed) < options.held_out]
    validation = [d for d in ranked if options.held_out <= _position(d, options.seed) < options.held_out
                  + options.validation]  # fmt: skip
    if len(ranked) >= 3:
        if not heldout:
            heldout = [next(d for d in ranked if d not in validation)]
        if not validation:
            validation = [next(d for d in ranked if d not in heldout)]
    taken = {id(d) for d in heldout + validation}
    return [d for d in documents if id(d) not in taken], validation, heldout


def _position(document: Document, seed: int) -> float:
    return zlib.crc32(f"{seed}\0{document.source}\0{document.path}".encode()) / 2**32


def _loss_filter(prepared: Prepared, score: Scorer) -> None:
    parts = {"train": prepared.train, "validation": prepared.validation, "heldout": prepared.heldout}
    everything = [document for documents in parts.values() for document in documents]
    losses = dict(zip(map(id, everything), score([d.text for d in everything])))
    bounds = loss_filter.loss_bounds([loss for loss in losses.values() if loss is not None])
    for name, documents in parts.items():
        kept = []
        for document in documents:
            loss = losses[id(document)]
            verdict = loss_filter.judge(loss, bounds) if loss is not None else loss_filter.Verdict(True)
            if verdict.keep:
                kept.append(document)
            else:
                detail = f"{verdict.detail}; was in {name}"
                prepared.rejected.append(Rejection(document.source, document.path, verdict.reason, "loss", detail))
        documents[:] = kept


def _write_shards(documents: list[Document], codec: TokenCodec, options: DataOptions, variant: int) -> int:
    """One shard folder of the training files, each source packed in import order with FIM seeded by `variant`."""
    folder = options.out / f"train-{variant}"
    writer = ShardWriter(folder, codec.vocab_size)
    by_source: dict[str, list[Document]] = defaultdict(list)
    for document in documents:
        by_source[document.source].append(document)
    for name, members in by_source.items():

        def body(document: Document) -> list[str]:
            key = zlib.crc32(f"{document.source}\0{document.path}".encode())
            rng = np.random.default_rng((options.seed, variant, key))
            return [segment for piece in fim_pieces(document.text, rng, options.fim) for segment in piece]

        segments = [segment for block in pack_repository(name, members, body) for segment in block.segments]
        texts = iter(codec.encode_batch([s for s in segments if not isinstance(s, Special)]))
        for segment in segments:
            writer.write([codec.special_ids[segment]] if isinstance(segment, Special) else next(texts))
        writer.write([codec.special_ids[END_OF_TEXT]])
    writer.close(
        {"files": len(documents), "languages": _languages(documents), "seed": options.seed, "fim_variant": variant}
    )
    return sum(shard["tokens"] for shard in writer.shards)


def _languages(documents: list[Document]) -> dict[str, dict[str, int]]:
    """Files per language, as `mimo train data`'s manifest counts them (the model card is made from these)."""
    counts = Counter(document.language for document in documents if document.language)
    return {language: {"files": count} for language, count in sorted(counts.items())}


def _record(document: Document) -> dict:
    return {"source": document.source, "path": document.path, "language": document.language, "text": document.text}


def _write_jsonl(path: Path, records: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as stream:
        for record in records:
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")


def _summary(prepared: Prepared, train_tokens: int, options: DataOptions) -> dict:
    return {
        "train_files": len(prepared.train),
        "train_tokens": train_tokens,
        "languages": _languages(prepared.train),
        "validation_files": [d.path for d in prepared.validation],
        "heldout_files": [d.path for d in prepared.heldout],
        "rejected": dict(Counter(r.reason for r in prepared.rejected).most_common()),
        "scrubbed": dict(sorted(prepared.scrubbed.items())),
        "licenses": prepared.licenses,
        "fim": {"rate": options.fim.rate, "spm_rate": options.fim.spm_rate, "variants": options.fim_variants},
        "seed": options.seed,
    }
