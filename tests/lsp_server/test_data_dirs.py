"""Where the language server keeps its files: the user's data and cache directories (platformdirs)."""

from __future__ import annotations

from lsp_server.review.cache import default_cache_dir
from lsp_server.telemetry import default_path


def test_the_xdg_directories_are_honoured(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_path() == tmp_path / "data" / "mimo" / "telemetry.sqlite"
    assert default_cache_dir() == tmp_path / "cache" / "mimo" / "review"


def test_without_them_the_home_directory_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_path() == tmp_path / ".local" / "share" / "mimo" / "telemetry.sqlite"
    assert default_cache_dir() == tmp_path / ".cache" / "mimo" / "review"
