"""Starting the server over stdio or TCP (shared by `mimo lsp` and `python -m lsp_server`)."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
from threading import Event
from typing import TYPE_CHECKING

from pygls.io_ import StdoutWriter, run_async

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)


def parse_tcp(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--tcp wants HOST:PORT, e.g. 127.0.0.1:2087 (got {value!r})")
    return host, int(port)


def serve(address: tuple[str, int] | None = None) -> None:
    from lsp_server.server import SERVER

    if address is not None:
        SERVER.start_tcp(*address)
    elif stdin_is_pollable():
        serve_stdio_async(SERVER)
    else:
        SERVER.start_io()  # a file or a terminal shared with stdout: pygls' thread-backed reader


def stdin_is_pollable() -> bool:
    """True when stdin is a pipe or socket of its own, which the event loop can read without a thread (on
    POSIX; Windows' loop cannot poll an inherited pipe). Reading sets O_NONBLOCK on the file description, so it
    must not be the one stdout writes to."""
    if os.name != "posix":
        return False
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
        shared = os.path.sameopenfile(sys.stdin.fileno(), sys.stdout.fileno())
    except (OSError, ValueError):
        return False
    return (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)) and not shared


def serve_stdio_async(server: LanguageServer) -> None:
    """pygls' stdio server reads every header line and body through a thread pool (three hand-offs per
    message, about a millisecond per completion round); here the event loop reads stdin itself, the way
    pygls' own TCP server reads its socket. Messages are handled by pygls' loop as before."""
    server._stop_event = Event()  # what pygls' shutdown() and exit set to end the loop
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
    try:
        asyncio.run(_read_stdin(server))
    except BrokenPipeError:
        log.error("the client closed the connection; shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()


async def _read_stdin(server: LanguageServer) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    await run_async(
        stop_event=server._stop_event,
        reader=_InTurnReader(reader),
        protocol=server.protocol,
        logger=log,
        error_handler=server.report_server_error,
    )


class _InTurnReader:
    """A StreamReader hands out lines it has buffered without giving the event loop a turn, so a burst of
    messages would be handled back to back, before the work the first ones started: a completion request would
    only start after the didChange sent behind it. A turn before each line keeps LSP's order, as pygls' thread
    reader did: every message's handler starts before the next message is read."""

    def __init__(self, reader: asyncio.StreamReader):
        self._reader = reader

    async def readline(self) -> bytes:
        await asyncio.sleep(0)
        return await self._reader.readline()

    async def readexactly(self, n: int) -> bytes:
        return await self._reader.readexactly(n)
