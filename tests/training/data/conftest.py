"""Real git repositories built in temporary folders for the collection and pipeline tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

MIT_TEXT = """MIT License

Copyright (c) 2026 Example

Permission is hereby granted, free of charge, to any person obtaining a copy of this software...
"""


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        check=True,
        capture_output=True,
    )


def make_repo(root: Path, files: dict[str, str | bytes], gitignore: str = "") -> Path:
    """A git repository with `files` committed (and `.gitignore`), plus any ignored files written after."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    if gitignore:
        (root / ".gitignore").write_text(gitignore)
    for path, content in files.items():
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(content if isinstance(content, bytes) else content.encode())
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


@pytest.fixture
def repo_factory(tmp_path):
    return lambda name, files, gitignore="": make_repo(tmp_path / name, files, gitignore)


@pytest.fixture(scope="session")
def small_tokenizer(tmp_path_factory) -> Path:
    """A 512-token BPE with our special tokens, as tokenizer.json only (what the data pipeline reads)."""
    import sysconfig

    from training.tokenizer import train_bpe

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = [(stdlib / name).read_text(encoding="utf-8") for name in ("os.py", "json/decoder.py", "textwrap.py")]
    out = tmp_path_factory.mktemp("tokenizer")
    train_bpe(texts, 512).save(str(out / "tokenizer.json"))
    return out
