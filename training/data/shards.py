"""Token shards on disk: flat binary files of token ids, memory-mapped when read, described by manifest.json.

A shard directory written by `mimo train data` holds

    manifest.json          {"format": "mimo-shards/1", "dtype": "uint16", "vocab_size": ..., "shards": [...], ...}
    shard-00000.bin        raw little-endian token ids, documents separated by <|endoftext|>
    shard-00001.bin        ...

Ids are uint16 when the vocabulary fits (< 65536), else uint32, so a reader needs only the manifest's dtype.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.errors import UserError

FORMAT = "mimo-shards/1"
MANIFEST = "manifest.json"
DEFAULT_SHARD_TOKENS = 32 * 1024 * 1024


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size < 2**16 else np.dtype(np.uint32)


class ShardWriter:
    """Appends token arrays to numbered shard files, starting a new file every `shard_tokens` tokens."""

    def __init__(self, out_dir: Path, vocab_size: int, shard_tokens: int = DEFAULT_SHARD_TOKENS):
        self.out_dir = out_dir
        self.dtype = token_dtype(vocab_size)
        self.vocab_size = vocab_size
        self.shard_tokens = shard_tokens
        self.shards: list[dict] = []
        self._file = None
        out_dir.mkdir(parents=True, exist_ok=True)

    def write(self, tokens: list[int] | np.ndarray) -> None:
        array = np.asarray(tokens, dtype=self.dtype)
        while array.size:
            if self._file is None or self.shards[-1]["tokens"] >= self.shard_tokens:
                self._open_next()
            room = self.shard_tokens - self.shards[-1]["tokens"]
            head, array = array[:room], array[room:]
            self._file.write(head.astype(self.dtype.newbyteorder("<"), copy=False).tobytes())
            self.shards[-1]["tokens"] += int(head.size)

    def _open_next(self) -> None:
        if self._file is not None:
            self._file.close()
        name = f"shard-{len(self.shards):05d}.bin"
        self._file = open(self.out_dir / name, "wb")  # noqa: SIM115 (open across write() calls, closed in close())
        self.shards.append({"path": name, "tokens": 0})

    def close(self, manifest: dict) -> Path:
        """Closes the last shard and writes manifest.json (the caller's fields plus the shard list)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        full = {
            "format": FORMAT,
            "dtype": self.dtype.name,
            "vocab_size": self.vocab_size,
            "total_tokens": sum(shard["tokens"] for shard in self.shards),
            "shards": self.shards,
            **manifest,
        }
        path = self.out_dir / MANIFEST
        path.write_text(json.dumps(full, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        return path


def read_manifest(shard_dir: Path) -> dict:
    path = Path(shard_dir) / MANIFEST
    if not path.is_file():
        raise UserError(f"{shard_dir}: no {MANIFEST}; build shards with `mimo train data SOURCES... --out {shard_dir}`")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        found = manifest.get("format")
        raise UserError(f"{path}: format {found!r} is not {FORMAT!r}; rebuild it with `mimo train data`")
    return manifest


@dataclass
class TokenStream:
    """All shards of one directory as one long, read-only token sequence (memory-mapped, nothing loaded)."""

    parts: list[np.memmap]
    starts: np.ndarray  # starts[i] = global offset of parts[i]; starts[-1] = total length

    @property
    def size(self) -> int:
        return int(self.starts[-1])

    def window(self, start: int, length: int) -> np.ndarray:
        """`length` tokens from `start`, wrapping around the end (so any start is valid), as int64."""
        out = np.empty(length, dtype=np.int64)
        filled = 0
        position = start % self.size
        while filled < length:
            part = int(np.searchsorted(self.starts, position, side="right")) - 1
            local = position - int(self.starts[part])
            take = min(length - filled, len(self.parts[part]) - local)
            out[filled : filled + take] = self.parts[part][local : local + take]
            filled += take
            position = (position + take) % self.size
        return out


def open_stream(shard_dir: Path) -> TokenStream:
    manifest = read_manifest(shard_dir)
    dtype = np.dtype(manifest["dtype"]).newbyteorder("<")
    parts = [
        np.memmap(Path(shard_dir) / shard["path"], dtype=dtype, mode="r", shape=(shard["tokens"],))
        for shard in manifest["shards"]
        if shard["tokens"] > 0
    ]
    if not parts:
        raise UserError(f"{shard_dir}: the shards hold no tokens; check the sources given to `mimo train data`")
    starts = np.cumsum([0] + [len(part) for part in parts])
    return TokenStream(parts, starts)
