"""`mimo train data` as datatrove pipeline steps (the stages are assembled in training/data/pipeline.py).

Work is split by source: task `rank` of `tasks` owns sources `rank, rank + tasks, ...`, so a repository's files
stay together for packing. Every file gets a global ordinal (source index, file index in path order); the dedup
decision is made on ordinals, so the output does not depend on how many tasks or workers ran:

    1. read       RepositoryReader (licence gate, file filters) -> StageDocuments -> CodeMinhashSignature
    2. buckets    datatrove's MinhashDedupBuckets (one task per LSH band)
    3. decide     FirstOccurrence: exact copies, then LSH candidates of an earlier *kept* file, are removed
    4. pack       ReadStaged -> datatrove's MinhashDedupFilter -> ScrubSecrets -> PackSources (held-out split,
                  FIM, import-order packing, tokens per source)
    5. merge      MergeShards: per-source tokens in source order into shards, held-out files, manifest

Files under the work folder (a datatrove DataFolder, so it may be on shared or object storage):
staged/, signatures/, buckets/, remove/, parts/, reports/.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections import Counter, defaultdict
from collections.abc import Iterator

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.binaryio import read_tuples_from_file
from datatrove.utils.word_tokenizers import WordTokenizer

from training.data.collect import Document as CodeFile
from training.data.collect import Source, list_files, read_files
from training.data.dedup import WORD, shingle_hashes
from training.data.filters import language_of
from training.data.licenses import from_directory, is_allowed
from training.data.scrub import scrub

_INDEX = struct.Struct("<Q16s")  # a staged file's ordinal and content digest, one per document in stream order
SOURCE_BITS = 32  # ordinal = source index << 32 | file index


def staged_name(rank: int) -> str:
    return f"staged/{rank:05d}.jsonl.gz"


def index_name(rank: int) -> str:
    return f"staged/{rank:05d}.index"


def part_name(source_index: int, suffix: str) -> str:
    return f"parts/{source_index:06d}{suffix}"


def write_json(folder, path: str, value) -> None:
    with folder.open(path, "wt") as stream:
        json.dump(value, stream)


def read_json(folder, path: str, default=None):
    if not folder.isfile(path):
        return default
    with folder.open(path, "rt") as stream:
        return json.load(stream)


class RepositoryReader(PipelineStep):
    """Reads this task's sources: the licence gate per source, then every file through the path and content
    filters (training/data/filters.py). Files left out are counted per source and reason in reports/read-RANK."""

    name, type = "📂 repositories", "📖 - READER"

    def __init__(self, sources: list[Source], work: str, licenses: frozenset[str], max_file_bytes: int):
        super().__init__()
        self.sources, self.work = sources, get_datafolder(work)
        self.licenses, self.max_file_bytes = set(licenses), max_file_bytes

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        reports = {}
        for index in range(rank, len(self.sources), world_size):
            source = self.sources[index]
            license = source.license or from_directory(source.root)
            included = is_allowed(license.spdx, self.licenses)
            report = {"root": str(source.root), "license": license.spdx, "license_evidence": license.evidence,
                      "included": included, "dropped": Counter()}  # fmt: skip
            reports[index] = report
            if not included:
                report["dropped"]["license"] += len(list_files(source))
                continue
            for number, (path, reason, text) in enumerate(read_files(source, self.max_file_bytes)):
                self.stat_update(reason or "read")
                if reason:
                    report["dropped"][reason] += 1
                    continue
                metadata = {"source_index": index, "source": source.name, "path": path, "language": language_of(path),
                            "ordinal": index << SOURCE_BITS | number}  # fmt: skip
                yield Document(text=text, id=f"{index}/{path}", metadata=metadata)
        write_json(self.work, f"reports/read-{rank:05d}.json", reports)


class StageDocuments(PipelineStep):
    """Writes the documents (JSON lines) and their ordinals and digests (for the dedup decision), passing them on."""

    name, type = "💾 stage", "💽 - WRITER"

    def __init__(self, work: str):
        super().__init__()
        self.work = get_datafolder(work)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with (
            self.work.open(staged_name(rank), "wt", compression="gzip") as texts,
            self.work.open(index_name(rank), "wb") as index,
        ):
            for document in data:
                texts.write(json.dumps({"text": document.text, **document.metadata}, ensure_ascii=False) + "\n")
                digest = hashlib.blake2b(document.text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
                index.write(_INDEX.pack(document.metadata["ordinal"], digest))
                yield document


class _CodeWords(WordTokenizer):
    """Words as identifiers and numbers (\\w+), the same as training/data/dedup.py's shingles: datatrove's
    natural-language tokenizers need spaCy and split code badly."""

    def word_tokenize(self, text: str) -> list[str]:
        return WORD.findall(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return text.splitlines()

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        raise NotImplementedError("not used by MinHash signatures")


class CodeMinhashSignature(MinhashDedupSignature):
    """datatrove's MinHash stage 1 with our code shingles (word 5-grams of training/data/dedup.py)."""

    def __init__(self, output_folder: str, config: MinhashConfig):
        super().__init__(output_folder, config, language=_CodeWords())

    def get_shingles(self, text: str) -> np.ndarray:
        return shingle_hashes(text, self.config.n_grams).reshape((-1, 1))


class FirstOccurrence(PipelineStep):
    """The dedup decision in ordinal order (one task): a file is a `duplicate` if an earlier file has the same
    content, a `near-duplicate` if it shares an LSH band with an earlier file that was kept; else it is kept.
    Writes remove/RANK.remove (the format datatrove's MinhashDedupFilter reads) and reports/dedup.json."""

    name, type = "🥇 first occurrence", "🫂 - DEDUP"

    def __init__(self, work: str, read_tasks: int):
        super().__init__()
        self.work, self.read_tasks = get_datafolder(work), read_tasks

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        files = {r: self._index(r) for r in range(self.read_tasks)}  # rank -> [(ordinal, digest)] by doc index
        bands = self._bands()
        order = sorted((ordinal, r, doc) for r, entries in files.items() for doc, (ordinal, _) in enumerate(entries))
        seen, kept_bands = set(), set()
        removed: dict[int, list[int]] = defaultdict(list)
        dropped: dict[int, Counter] = defaultdict(Counter)
        for ordinal, r, doc in order:
            digest, mine = files[r][doc][1], bands.get((r, doc), ())
            reason = "duplicate" if digest in seen else None
            seen.add(digest)
            if reason is None and any(band in kept_bands for band in mine):
                reason = "near-duplicate"
            if reason is None:
                kept_bands.update(mine)
                continue
            removed[r].append(doc)
            dropped[ordinal >> SOURCE_BITS][reason] += 1
            self.stat_update(reason)
        for r in files:
            with self.work.open(f"remove/{r:06d}.remove", "wb") as out:
                out.write(struct.pack(f"<{len(removed[r])}I", *sorted(removed[r])))
        write_json(self.work, "reports/dedup.json", {str(index): counts for index, counts in dropped.items()})
        return iter(())

    def _index(self, rank: int) -> list[tuple[int, bytes]]:
        if not self.work.isfile(index_name(rank)):
            return []
        with self.work.open(index_name(rank), "rb") as stream:
            return list(_INDEX.iter_unpack(stream.read()))

    def _bands(self) -> dict[tuple[int, int], list[int]]:
        """(rank, doc) -> ids of the LSH collision groups it is in, over all bands."""
        members: dict[tuple[int, int], list[int]] = defaultdict(list)
        next_id = 0
        for name in sorted(self.work.list_files("buckets", glob_pattern="*.dups")):
            with self.work.open(name, "rb") as stream:
                groups = collision_groups(read_tuples_from_file(stream, "4I"))
            for node, group in groups.items():
                members[node].append(next_id + group)
            next_id += len(set(groups.values()))
        return members


def collision_groups(pairs) -> dict[tuple[int, int], int]:
    """A .dups file holds one band's pairs of documents with equal signatures, (rank, doc, rank, doc), chained
    through each run of equal signatures; the connected documents are one collision group, numbered from 0."""
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def root(node):
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for first_rank, first_doc, second_rank, second_doc in pairs:
        parent[root((second_rank, second_doc))] = root((first_rank, first_doc))
    numbers: dict[tuple[int, int], int] = {}
    return {node: numbers.setdefault(root(node), len(numbers)) for node in list(parent)}


class ReadStaged(PipelineStep):
    """Reads back what StageDocuments wrote for this rank, in the same order (so document indices match)."""

    name, type = "📂 staged", "📖 - READER"

    def __init__(self, work: str):
        super().__init__()
        self.work = get_datafolder(work)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if not self.work.isfile(staged_name(rank)):
            return
        with self.work.open(staged_name(rank), "rt", compression="gzip") as stream:
            for line in stream:
                record = json.loads(line)
                text = record.pop("text")
                yield Document(text=text, id=f"{record['source_index']}/{record['path']}", metadata=record)


class ScrubSecrets(PipelineStep):
    """Secrets and e-mail addresses to placeholders (training/data/scrub.py); counts go with the document."""

    name, type = "🔐 scrub", "✂️ - FORMAT"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for document in data:
            result = scrub(document.text)
            document.text = result.text
            document.metadata["scrubbed"] = dict(result.counts)
            for kind, count in result.counts.items():
                self.stat_update(kind, value=count)
            yield document


def code_file(document: Document) -> CodeFile:
    meta = document.metadata
    return CodeFile(meta["source"], meta["path"], meta["language"], document.text)


def by_source(data: DocumentsPipeline) -> Iterator[tuple[int, list[Document]]]:
    """Consecutive documents of one source (a task's stream holds its sources one after another)."""
    current, members = None, []
    for document in data:
        index = document.metadata["source_index"]
        if members and index != current:
            yield current, members
            members = []
        current = index
        members.append(document)
    if members:
        yield current, members
