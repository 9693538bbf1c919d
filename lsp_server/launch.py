"""Starting the server over stdio or TCP (shared by `mimo lsp` and `python -m lsp_server`)."""

from __future__ import annotations


def parse_tcp(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--tcp wants HOST:PORT, e.g. 127.0.0.1:2087 (got {value!r})")
    return host, int(port)


def serve(address: tuple[str, int] | None = None) -> None:
    from lsp_server.server import SERVER

    if address is None:
        SERVER.start_io()
    else:
        SERVER.start_tcp(*address)
