"""A raw JSON-RPC client for the real server process over stdio: it sends any bytes (malformed JSON, wrong ids,
odd params that pytest-lsp's typed client would refuse to send) and reads the framed answers on a thread."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class RawServer:
    def __init__(self, options: dict[str, Any]):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lsp_server"], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self.notifications: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        self._ids = 0
        self.request("initialize", {"capabilities": {}, "initializationOptions": options, "processId": None})
        self.notify("initialized", {})

    def send_bytes(self, body: bytes) -> None:
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_bytes(json.dumps(message).encode("utf-8", "surrogatepass"))

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: Any, timeout: float = 30.0) -> dict[str, Any]:
        self._ids += 1
        message_id = f"probe-{self._ids}"
        self.send({"jsonrpc": "2.0", "id": message_id, "method": method, "params": params})
        return self.answer(message_id, timeout)

    def answer(self, message_id: Any, timeout: float = 30.0) -> dict[str, Any]:
        """The response to ``message_id`` (other responses that arrive first are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to request {message_id!r} in {timeout} s")
            try:
                message = self.answers.get(timeout=left)
            except queue.Empty:
                continue
            if message.get("id") == message_id and ("result" in message or "error" in message):
                return message

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.alive():
            try:
                self.request("shutdown", None, timeout=10)
                self.notify("exit", None)
                self.process.wait(10)
            except (OSError, TimeoutError, subprocess.TimeoutExpired):
                pass
        if self.alive():
            self.process.kill()
            self.process.wait()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line in (b"\r\n", b"\n"):
                    break
            message = json.loads(stream.read(length or 0))
            if "method" in message and "id" not in message:
                self.notifications.append(message)
            elif "method" in message:  # a request from the server: answer it, as an editor would
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            else:
                self.answers.put(message)
