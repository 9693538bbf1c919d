"""The last two stages of `mimo train data`: per source, the held-out split, FIM, import-order packing and
tokens (PackSources, one task per share of the sources); then the shards, held-out file and manifest in source
order (MergeShards, one task). See training/data/steps.py for the stages before."""

from __future__ import annotations

import functools
import json
import shutil
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep

from engine.special_tokens import END_OF_TEXT
from training.data.collect import Document
from training.data.fim import Segments, Special, fim_pieces
from training.data.options import BuildOptions
from training.data.pack import Block, pack_repository
from training.data.shards import MANIFEST, ShardWriter, token_dtype
from training.data.steps import by_source, code_file, part_name, read_json, write_json
from training.tokenizer import TokenCodec

HELDOUT_DIR = "heldout"
HELDOUT_FILE = "heldout.jsonl"
EMPTY_REPORT = "reports/empty.json"
ENCODE_CHUNK = 128  # files per encode_batch call: big enough for the Rust threads
COPY_TOKENS = 16 * 1024 * 1024  # tokens read at a time when a source's part is copied into the shards
STAGED = ("staged", "signatures", "buckets", "remove", "parts")  # removed once the shards are written


def is_held_out(document: Document, options: BuildOptions) -> bool:
    """A file is held out when the hash of (seed, source, path) falls below the fraction: stable across runs,
    and adding a source never moves another source's files."""
    key = f"{options.seed}\0{document.source}\0{document.path}".encode()
    return zlib.crc32(key) / 2**32 < options.holdout_fraction


def fim_body(options: BuildOptions, document: Document) -> Segments:
    """The file's FIM transform, from a generator seeded by the file itself (independent of corpus order)."""
    rng = np.random.default_rng((options.seed, zlib.crc32(f"{document.source}\0{document.path}".encode())))
    return [segment for piece in fim_pieces(document.text, rng, options.fim) for segment in piece]


class PackSources(PipelineStep):
    """Per source: the held-out split, then the training files FIM'd, packed in import order and tokenised as one
    document ending in <|endoftext|> (parts/SOURCE.bin); held-out files as JSON lines; a report of counts."""

    name, type = "📦 pack", "🔢 - TOKENIZER"

    def __init__(self, work: str, options: BuildOptions):
        super().__init__()
        self.work, self.options = get_datafolder(work), options

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        codec = TokenCodec(self.options.tokenizer)
        dtype = token_dtype(codec.vocab_size).newbyteorder("<")
        for index, documents in by_source(data):
            files = [code_file(document) for document in documents]
            scrubbed = sum((Counter(document.metadata["scrubbed"]) for document in documents), Counter())
            train = [file for file in files if not is_held_out(file, self.options)]
            heldout = [file for file in files if is_held_out(file, self.options)]
            report = {"files": 0, "tokens": 0, "languages": defaultdict(lambda: {"files": 0, "tokens": 0}),
                      "scrubbed": scrubbed, "heldout": [file.path for file in heldout]}  # fmt: skip
            if train:
                tokens = self._tokens(files[0].source, train, codec, report)
                with self.work.open(part_name(index, ".bin"), "wb") as out:
                    out.write(np.asarray(tokens, dtype=dtype).tobytes())
                self.stat_update("tokens", value=len(tokens))
            with self.work.open(part_name(index, ".heldout.jsonl"), "wt") as out:
                for file in heldout:
                    record = {"source": file.source, "path": file.path, "language": file.language, "text": file.text}
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
            write_json(self.work, part_name(index, ".json"), report)
        return iter(())

    def _tokens(self, name: str, files: list[Document], codec: TokenCodec, report: dict) -> list[int]:
        blocks = pack_repository(name, files, functools.partial(fim_body, self.options))
        tokens: list[int] = []
        for start in range(0, len(blocks), ENCODE_CHUNK):
            tokens.extend(encode_blocks(blocks[start : start + ENCODE_CHUNK], codec, report))
        tokens.append(codec.special_ids[END_OF_TEXT])
        report["tokens"] += 1
        return tokens


def encode_blocks(blocks: list[Block], codec: TokenCodec, report: dict) -> list[int]:
    """The blocks' tokens, in order; counts tokens and files per language into the report."""
    texts = [segment for block in blocks for segment in block.segments if not isinstance(segment, Special)]
    encoded = iter(codec.encode_batch(texts))
    tokens: list[int] = []
    for block in blocks:
        block_tokens = [
            token
            for segment in block.segments
            for token in ([codec.special_ids[segment]] if isinstance(segment, Special) else next(encoded))
        ]
        tokens.extend(block_tokens)
        report["tokens"] += len(block_tokens)
        if block.document is not None:
            language = report["languages"][block.document.language]
            language["files"] += 1
            language["tokens"] += len(block_tokens)
            report["files"] += 1
    return tokens


class MergeShards(PipelineStep):
    """Concatenates the sources' tokens in command-line order into shards of `shard_tokens`, writes the held-out
    file and manifest.json, then deletes the intermediate files. An empty corpus leaves the output folder as it
    was and writes reports/empty.json instead (the command turns it into its error)."""

    name, type = "🧩 merge", "💽 - WRITER"

    def __init__(self, work: str, options: BuildOptions, names: list[str]):
        super().__init__()
        self.work, self.options, self.names = get_datafolder(work), options, names

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        entries = self._source_entries()
        if not any(entry["files"] for entry in entries.values()):
            dropped = sum((Counter(entry["dropped"]) for entry in entries.values()), Counter())
            write_json(self.work, EMPTY_REPORT, dict(dropped))
            return iter(())
        out = Path(self.options.out)
        clear_previous(out)
        writer = ShardWriter(out, TokenCodec(self.options.tokenizer).vocab_size, self.options.shard_tokens)
        heldout_path = out / HELDOUT_DIR / HELDOUT_FILE
        heldout_path.parent.mkdir(parents=True, exist_ok=True)
        with heldout_path.open("w", encoding="utf-8") as heldout:
            for index in range(len(self.names)):
                self._copy_part(index, writer, heldout)
        writer.close(self._manifest(entries, heldout_path))
        for folder in STAGED:
            if self.work.exists(folder):
                self.work.rm(folder, recursive=True)
        return iter(())

    def _copy_part(self, index: int, writer: ShardWriter, heldout) -> None:
        if self.work.isfile(name := part_name(index, ".bin")):
            with self.work.open(name, "rb") as stream:
                while chunk := stream.read(COPY_TOKENS * writer.dtype.itemsize):
                    writer.write(np.frombuffer(chunk, dtype=writer.dtype.newbyteorder("<")))
        if self.work.isfile(name := part_name(index, ".heldout.jsonl")):
            with self.work.open(name, "rt") as stream:
                shutil.copyfileobj(stream, heldout)

    def _source_entries(self) -> dict[str, dict]:
        """The manifest's per-source entries, from the read, dedup and pack reports, in command-line order."""
        read: dict[str, dict] = {}
        for name in self.work.list_files("reports", glob_pattern="read-*.json"):
            read.update(read_json(self.work, name))  # paths come back relative to the work folder
        dedup = read_json(self.work, "reports/dedup.json", {})
        entries = {}
        for index, name in enumerate(self.names):
            packed = read_json(self.work, part_name(index, ".json"), {"files": 0, "tokens": 0, "languages": {}})
            report = read[str(index)]
            dropped = Counter(report["dropped"]) + Counter(dedup.get(str(index), {}))
            entries[name] = {
                **{key: report[key] for key in ("root", "license", "license_evidence", "included")},
                "files": packed["files"], "tokens": packed["tokens"],
                "languages": dict(sorted(packed["languages"].items())), "dropped": dict(sorted(dropped.items())),
                "scrubbed": packed.get("scrubbed", {}), "heldout": packed.get("heldout", []),
            }  # fmt: skip
        return entries

    def _manifest(self, entries: dict[str, dict], heldout_path: Path) -> dict:
        options = self.options
        languages: dict[str, dict[str, int]] = defaultdict(lambda: {"files": 0, "tokens": 0})
        dropped, scrubbed, heldout = Counter(), Counter(), []
        for name, entry in entries.items():
            for language, figures in entry["languages"].items():
                languages[language]["files"] += figures["files"]
                languages[language]["tokens"] += figures["tokens"]
            dropped.update(entry["dropped"])
            scrubbed.update(entry.pop("scrubbed"))
            heldout += [{"source": name, "path": path} for path in entry.pop("heldout")]
        return {
            "tokenizer": str(Path(options.tokenizer).resolve()),
            "seed": options.seed,
            "fim": {"rate": options.fim.rate, "spm_rate": options.fim.spm_rate, "chunk_chars": options.fim.chunk_chars},
            "dedup_threshold": options.dedup_threshold,
            "licenses_allowed": sorted(options.licenses),
            "files": sum(entry["files"] for entry in entries.values()),
            "languages": dict(sorted(languages.items())),
            "dropped": dict(sorted(dropped.items())),
            "scrubbed": dict(sorted(scrubbed.items())),
            "sources": entries,
            "heldout": {
                "path": heldout_path.relative_to(options.out).as_posix(),
                "fraction": options.holdout_fraction,
                "files": heldout,
            },
        }


def clear_previous(out: Path) -> None:
    """Removes the shards and manifest of an earlier build in the same folder (never anything else)."""
    if not out.exists():
        return
    for old in [*out.glob("shard-*.bin"), out / MANIFEST, out / HELDOUT_DIR / HELDOUT_FILE]:
        if old.is_file():
            old.unlink()
