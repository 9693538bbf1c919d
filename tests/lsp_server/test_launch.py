"""Which stdio transport the server picks (the server tests drive the event-loop reader over real pipes)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from threading import Event

import pytest
from pygls.io_ import run_async

from lsp_server import launch


@pytest.fixture
def stdio(monkeypatch, tmp_path):
    """Sets sys.stdin and sys.stdout to the given binary files (stdout: a file of its own when not given)."""
    opened = []

    def use(stdin, stdout=None):
        stdout = stdout or open(tmp_path / "stdout", "wb")
        opened.extend((stdin, stdout))
        monkeypatch.setattr(sys, "stdin", stdin)
        monkeypatch.setattr(sys, "stdout", stdout)

    yield use
    for handle in opened:
        handle.close()


def test_a_pipe_is_read_by_the_event_loop(stdio):
    read_end, write_end = os.pipe()
    os.close(write_end)
    stdio(open(read_end, "rb"))
    assert launch.stdin_is_pollable()


def test_a_regular_file_is_read_by_pygls_threads(stdio, tmp_path):
    (tmp_path / "stdin").write_bytes(b"")
    stdio(open(tmp_path / "stdin", "rb"))
    assert not launch.stdin_is_pollable()  # epoll refuses regular files


def test_a_socket_that_is_also_stdout_is_read_by_pygls_threads(stdio):
    ours, theirs = socket.socketpair()
    theirs.close()
    stdio(os.fdopen(os.dup(ours.fileno()), "rb"), os.fdopen(ours.detach(), "wb"))
    assert not launch.stdin_is_pollable()  # O_NONBLOCK on stdin would make stdout's writes fail


async def test_each_message_is_read_after_the_work_the_one_before_started():
    """A didChange sent right behind a completion request must not reach the document before the request's
    handler has looked at it, even when both arrive in one read."""
    reader = asyncio.StreamReader()
    for number in (1, 2):
        body = json.dumps({"n": number}).encode()
        reader.feed_data(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    reader.feed_eof()
    events: list[str] = []

    async def handler(number: int) -> None:
        events.append(f"handler {number} started")

    class Protocol:
        def structure_message(self, data):
            return data

        def handle_message(self, message):
            events.append(f"message {message['n']} read")
            asyncio.ensure_future(handler(message["n"]))  # as pygls runs an async handler

    await run_async(Event(), launch._InTurnReader(reader), Protocol())
    await asyncio.sleep(0)
    assert events == ["message 1 read", "handler 1 started", "message 2 read", "handler 2 started"]
