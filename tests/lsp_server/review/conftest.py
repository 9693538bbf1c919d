"""Real git repositories in temporary folders, and a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# pytest puts tests/ on sys.path, where tests/lsp_server/review would shadow the package lsp_server.review (the
# editable install's finder comes after the path finder). Putting the repository root first avoids that; the
# lasting fix is `pythonpath = ["."]` in pytest's configuration.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))


class Repo:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "dev@example.com")
        self.git("config", "user.name", "Dev")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, check=True)
        return done.stdout.decode("utf-8", "replace")

    def write(self, path: str, content: str | bytes) -> Path:
        file = self.root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            file.write_bytes(content)
        else:
            file.write_text(content, encoding="utf-8")
        return file

    def commit(self, message: str = "commit") -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")
