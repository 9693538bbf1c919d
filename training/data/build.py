"""`mimo train data`: sources -> filtered, deduplicated, scrubbed, FIM'd, packed, tokenised shards + manifest.

Steps, in order: licence gate per source; file collection with skip rules; exact then near dedup (first occurrence
wins); secret/PII scrub; a deterministic held-out split (by hash of seed, source and path, so adding a source
never moves another's files); per-file FIM; per-source packing in import order; tokenisation into shards. Every
dropped file is counted under its reason; the manifest records it all (format in docs/data.md).
"""

from __future__ import annotations

import functools
import json
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.special_tokens import END_OF_TEXT
from training.data.collect import Document, Source, collect, list_files
from training.data.dedup import DEFAULT_THRESHOLD, Deduplicator
from training.data.filters import DEFAULT_MAX_BYTES
from training.data.fim import FimConfig, Segments, Special, fim_pieces
from training.data.licenses import DEFAULT_ALLOWED, from_directory, is_allowed
from training.data.pack import Block, pack_repository
from training.data.progress import progress_bar
from training.data.scrub import scrub
from training.data.shards import DEFAULT_SHARD_TOKENS, MANIFEST, ShardWriter
from training.errors import UserError
from training.tokenizer import TokenCodec

HELDOUT_DIR = "heldout"
HELDOUT_FILE = "heldout.jsonl"
ENCODE_CHUNK = 128  # files per encode_batch call: big enough for the Rust threads, small enough to show progress


@dataclass(frozen=True)
class BuildOptions:
    out: Path
    tokenizer: Path
    licenses: frozenset[str] = frozenset(DEFAULT_ALLOWED)
    fim: FimConfig = FimConfig()
    seed: int = 0
    holdout_fraction: float = 0.02
    dedup_threshold: float = DEFAULT_THRESHOLD
    max_file_bytes: int = DEFAULT_MAX_BYTES
    shard_tokens: int = DEFAULT_SHARD_TOKENS


@dataclass
class SourceReport:
    root: str
    license: str
    license_evidence: str
    included: bool
    files: int = 0
    tokens: int = 0
    languages: dict = field(default_factory=lambda: defaultdict(lambda: {"files": 0, "tokens": 0}))
    dropped: Counter = field(default_factory=Counter)


def build(sources: list[Source], options: BuildOptions) -> dict:
    """Builds the shard directory `options.out` and returns its manifest."""
    _check_inputs(sources, options)
    codec = TokenCodec(options.tokenizer)
    reports, documents = _collect_all(sources, options)
    kept, scrubbed = _dedup_and_scrub(documents, reports, options.dedup_threshold)
    train, heldout = _split(kept, options)
    if not train:
        dropped = sum((report.dropped for report in reports.values()), Counter())
        raise UserError(f"empty corpus: no file survived the filters (dropped: {_reasons(dropped)}); check the sources")
    _clear_previous(options.out)
    writer = ShardWriter(options.out, codec.vocab_size, options.shard_tokens)
    _tokenise(train, reports, codec, writer, options)
    heldout_path = _write_heldout(heldout, options.out)
    manifest = _manifest(reports, scrubbed, heldout, heldout_path, options)
    writer.close(manifest)
    return json.loads((options.out / MANIFEST).read_text(encoding="utf-8"))


def _check_inputs(sources: list[Source], options: BuildOptions) -> None:
    if not sources:
        raise UserError("no sources given: name git repositories or folders, or pass --from-installed")
    names = Counter(source.name for source in sources)
    if clashes := [name for name, count in names.items() if count > 1]:
        raise UserError(f"source name(s) {', '.join(clashes)} given twice; name them apart with NAME=PATH")
    if not 0 <= options.holdout_fraction < 1:
        raise UserError(f"--holdout-fraction must be in [0, 1), got {options.holdout_fraction}")
    if not (0 <= options.fim.rate <= 1 and 0 <= options.fim.spm_rate <= 1):
        raise UserError("--fim-rate and --spm-rate must be in [0, 1]")


def _collect_all(sources: list[Source], options: BuildOptions) -> tuple[dict[str, SourceReport], list[Document]]:
    reports = {source.name: _licence_report(source, options) for source in sources}
    admitted = []
    for source in sources:
        files = len(list_files(source))
        if reports[source.name].included:
            admitted.append((source, files))
        else:
            reports[source.name].dropped["license"] += files
    documents = []
    with progress_bar("read", sum(files for _, files in admitted)) as advance:
        for source, _ in admitted:
            collected = collect(source, options.max_file_bytes, progress=advance)
            reports[source.name].dropped.update(collected.dropped)
            documents.extend(collected.documents)
    return reports, documents


def _licence_report(source: Source, options: BuildOptions) -> SourceReport:
    license = source.license or from_directory(source.root)
    included = is_allowed(license.spdx, set(options.licenses))
    return SourceReport(str(source.root), license.spdx, license.evidence, included)


def _dedup_and_scrub(
    documents: list[Document], reports: dict[str, SourceReport], threshold: float
) -> tuple[list[Document], Counter]:
    deduplicator, kept, scrubbed = Deduplicator(threshold), [], Counter()
    with progress_bar("dedup + scrub", len(documents)) as advance:
        for document in documents:
            advance(1)
            if reason := deduplicator.check(document.text):
                reports[document.source].dropped[reason] += 1
                continue
            result = scrub(document.text)
            scrubbed.update(result.counts)
            kept.append(Document(document.source, document.path, document.language, result.text))
    return kept, scrubbed


def _split(documents: list[Document], options: BuildOptions) -> tuple[list[Document], list[Document]]:
    """A file is held out when the hash of (seed, source, path) falls below the fraction: stable across runs."""
    train, heldout = [], []
    for document in documents:
        key = f"{options.seed}\0{document.source}\0{document.path}".encode()
        (heldout if zlib.crc32(key) / 2**32 < options.holdout_fraction else train).append(document)
    return train, heldout


def _fim_body(options: BuildOptions, document: Document) -> Segments:
    """The file's FIM transform, from a generator seeded by the file itself (independent of corpus order)."""
    rng = np.random.default_rng((options.seed, zlib.crc32(f"{document.source}\0{document.path}".encode())))
    return [segment for piece in fim_pieces(document.text, rng, options.fim) for segment in piece]


def _tokenise(
    documents: list[Document], reports: dict[str, SourceReport], codec: TokenCodec, writer: ShardWriter,
    options: BuildOptions,
) -> None:  # fmt: skip
    """Each source as one packed document ending in <|endoftext|>, encoded and written a chunk of files at a time."""
    by_source: dict[str, list[Document]] = defaultdict(list)
    for document in documents:
        by_source[document.source].append(document)
    with progress_bar("tokenise", len(documents)) as advance:
        for name, members in by_source.items():
            blocks = pack_repository(name, members, functools.partial(_fim_body, options))
            for start in range(0, len(blocks), ENCODE_CHUNK):
                chunk = blocks[start : start + ENCODE_CHUNK]
                writer.write(_encode_blocks(chunk, codec, reports[name]))
                advance(sum(block.document is not None for block in chunk))
            writer.write([codec.special_ids[END_OF_TEXT]])
            reports[name].tokens += 1


def _encode_blocks(blocks: list[Block], codec: TokenCodec, report: SourceReport) -> list[int]:
    """The blocks' tokens, in order; counts tokens and files per language into the report."""
    texts = [segment for block in blocks for segment in block.segments if not isinstance(segment, Special)]
    encoded = iter(codec.encode_batch(texts))
    tokens: list[int] = []
    for block in blocks:
        block_tokens = _encode_segments(block.segments, encoded, codec)
        tokens.extend(block_tokens)
        report.tokens += len(block_tokens)
        if block.document is not None:
            language = report.languages[block.document.language]
            language["files"] += 1
            language["tokens"] += len(block_tokens)
            report.files += 1
    return tokens


def _encode_segments(segments: Segments, encoded, codec: TokenCodec) -> list[int]:
    ids: list[int] = []
    for segment in segments:
        ids.extend([codec.special_ids[segment]] if isinstance(segment, Special) else next(encoded))
    return ids


def _write_heldout(documents: list[Document], out: Path) -> Path:
    """Held-out files as JSONL ({"source", "path", "language", "text"} a line): what `mimo eval completion` reads."""
    folder = out / HELDOUT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / HELDOUT_FILE
    with path.open("w", encoding="utf-8") as stream:
        for document in documents:
            record = {"source": document.source, "path": document.path, "language": document.language}
            stream.write(json.dumps({**record, "text": document.text}, ensure_ascii=False) + "\n")
    return path


def _clear_previous(out: Path) -> None:
    """Removes the shards and manifest of an earlier build in the same folder (never anything else)."""
    if not out.exists():
        return
    for old in [*out.glob("shard-*.bin"), out / MANIFEST, out / HELDOUT_DIR / HELDOUT_FILE]:
        if old.is_file():
            old.unlink()


def _manifest(
    reports: dict[str, SourceReport], scrubbed: Counter, heldout: list[Document], heldout_path: Path,
    options: BuildOptions,
) -> dict:  # fmt: skip
    languages: dict[str, dict[str, int]] = defaultdict(lambda: {"files": 0, "tokens": 0})
    for report in reports.values():
        for language, figures in report.languages.items():
            languages[language]["files"] += figures["files"]
            languages[language]["tokens"] += figures["tokens"]
    dropped = sum((report.dropped for report in reports.values()), Counter())
    return {
        "tokenizer": str(Path(options.tokenizer).resolve()),
        "seed": options.seed,
        "fim": {"rate": options.fim.rate, "spm_rate": options.fim.spm_rate, "chunk_chars": options.fim.chunk_chars},
        "dedup_threshold": options.dedup_threshold,
        "licenses_allowed": sorted(options.licenses),
        "files": sum(report.files for report in reports.values()),
        "languages": dict(sorted(languages.items())),
        "dropped": dict(sorted(dropped.items())),
        "scrubbed": dict(sorted(scrubbed.items())),
        "sources": {name: _source_entry(report) for name, report in reports.items()},
        "heldout": {
            "path": heldout_path.relative_to(options.out).as_posix(),
            "fraction": options.holdout_fraction,
            "files": [{"source": d.source, "path": d.path} for d in heldout],
        },
    }


def _source_entry(report: SourceReport) -> dict:
    return {
        "root": report.root,
        "license": report.license,
        "license_evidence": report.license_evidence,
        "included": report.included,
        "files": report.files,
        "tokens": report.tokens,
        "languages": dict(sorted(report.languages.items())),
        "dropped": dict(sorted(report.dropped.items())),
    }


def _reasons(dropped: Counter) -> str:
    return ", ".join(f"{reason} {count}" for reason, count in dropped.most_common()) or "none; no files found"
