"""Duplicate removal: exact copies by content hash, near copies by MinHash LSH over word 5-grams.

The first occurrence wins (sources are processed in the order given, files in path order), so a re-run drops the
same files. Near-duplicates follow BigCode's recipe: 5-gram shingles of the file's word tokens, 128 permutations;
a candidate from LSH is confirmed with the estimated Jaccard similarity before the file is dropped.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass, field

import numpy as np

DEFAULT_THRESHOLD = 0.8
NUM_PERM = 128
SHINGLE = 5
WORD = re.compile(r"\w+")  # a shingle's words: identifiers, keywords, numbers
_PRIME = np.uint64(1_000_003)
_MASK = np.uint64(0xFFFFFFFF)


def shingle_hashes(text: str, size: int = SHINGLE) -> np.ndarray:
    """Distinct 32-bit hashes of the text's word `size`-grams (a polynomial hash over per-word CRC32s)."""
    words = WORD.findall(text)
    table = {word: zlib.crc32(word.encode()) for word in set(words)}
    ids = np.fromiter((table[word] for word in words), dtype=np.uint64, count=len(words))
    if len(ids) < size:
        return np.array([int(np.sum(ids)) & _MASK], dtype=np.uint64)
    count = len(ids) - size + 1
    acc = np.zeros(count, dtype=np.uint64)
    for offset in range(size):
        acc = (acc * _PRIME + ids[offset : offset + count]) & _MASK
    return np.unique(acc)


@dataclass
class Deduplicator:
    """Feed texts in order with `check`; it answers None (keep) or "duplicate" / "near-duplicate"."""

    threshold: float = DEFAULT_THRESHOLD
    _hashes: set[str] = field(default_factory=set)
    _lsh: object = None
    _permutations: tuple | None = None
    _scheme: str | None = None
    _count: int = 0

    def __post_init__(self) -> None:
        from datasketch import MinHash, MinHashLSH

        self._lsh = MinHashLSH(threshold=self.threshold, num_perm=NUM_PERM)
        template = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=int, scheme="affine32")
        self._permutations = template.permutations  # generated once, reused per file
        self._scheme = template.scheme
        self._signatures: dict[str, object] = {}

    def check(self, text: str) -> str | None:
        digest = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()
        if digest in self._hashes:
            return "duplicate"
        self._hashes.add(digest)
        signature = self._minhash(text)
        for key in self._lsh.query(signature):
            if self._signatures[key].jaccard(signature) >= self.threshold:
                return "near-duplicate"
        key = str(self._count)
        self._count += 1
        self._lsh.insert(key, signature)
        self._signatures[key] = signature
        return None

    def _minhash(self, text: str):
        from datasketch import MinHash

        signature = MinHash(
            num_perm=NUM_PERM, hashfunc=int, permutations=self._permutations, scheme=self._scheme
        )  # shingles arrive already hashed to 32 bits
        signature.update_batch(shingle_hashes(text).tolist())
        return signature


def shingle_jaccard(a: str, b: str) -> float:
    """Exact Jaccard similarity of two texts' shingle sets (for tests and diagnostics)."""
    left, right = set(shingle_hashes(a).tolist()), set(shingle_hashes(b).tolist())
    return len(left & right) / max(1, len(left | right))
