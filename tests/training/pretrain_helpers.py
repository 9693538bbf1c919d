"""Builds the data directory a pretraining run reads: `tokenizer/` and `shards/` (real shards, real tokenizer)."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json")


def make_data_dir(out_dir: Path, tokenizer_source: Path, limit_bytes: int = 200_000) -> Path:
    """Copies a tokenizer and writes one shard directory of stdlib Python, documents separated by <|endoftext|>."""
    from transformers import AutoTokenizer

    from training.data.shards import ShardWriter

    tokenizer_dir = out_dir / "tokenizer"
    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (tokenizer_source / name).is_file():
            shutil.copy(tokenizer_source / name, tokenizer_dir / name)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    writer = ShardWriter(out_dir / "shards", vocab_size=len(tokenizer), shard_tokens=20_000)
    total, files, tokens = 0, 0, 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="ignore")
        ids = tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
        writer.write(ids)
        total, files, tokens = total + len(text), files + 1, tokens + len(ids)
        if total > limit_bytes:
            break
    # As `mimo train data` records them: the model card of a run on these shards is made from the languages.
    languages = {"python": {"files": files, "tokens": tokens}}
    writer.close({"sources": {"stdlib": {"license": "PSF-2.0"}}, "languages": languages})
    return out_dir
