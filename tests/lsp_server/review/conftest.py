"""Real git repositories in temporary folders, and a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# pytest puts tests/ on sys.path, where tests/lsp_server/review would shadow the package lsp_server.review (the
# editable install's finder comes after the path finder). Putting the repository root first avoids that; the
# lasting fix is `pythonpath = ["."]` in pytest's configuration.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))


class Repo:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "dev@example.com")
        self.git("config", "user.name", "Dev")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str) -> str:
        return self.git_bytes(*args).decode("utf-8", "replace")

    def git_bytes(self, *args: str) -> bytes:
        return subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, check=True).stdout

    def write(self, path: str, content: str | bytes) -> Path:
        file = self.root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            file.write_bytes(content)
        else:
            file.write_text(content, encoding="utf-8")
        return file

    def commit(self, message: str = "commit") -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")


# ---- a scripted OpenAI-compatible server: the engine is faked only at its HTTP boundary ---------------------

import json  # noqa: E402
import re  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

MARKED_LINE = re.compile(r"^\s*(\d+) \+ .*# BUG: (.*)$", re.M)
FILE_LINE = re.compile(r"^File: (\S+)", re.M)


def findings_for_marked_lines(messages: list[dict]) -> str:
    """The reviewer the tests script: one warning for every added line carrying a `# BUG: <message>` comment."""
    prompt = messages[1]["content"]
    findings = []
    for section in prompt.split("\n---\n"):
        path = FILE_LINE.search(section)
        for match in MARKED_LINE.finditer(section):
            findings.append(
                {
                    "path": path[1] if path else "",
                    "start_line": int(match[1]),
                    "end_line": int(match[1]),
                    "severity": "warning",
                    "rule": "marked-bug",
                    "message": match[2].strip(),
                }
            )
    return json.dumps({"findings": findings})


class ScriptedServer:
    """Serves /v1/models and streaming /v1/chat/completions; ``answer(messages)`` makes each reply's text.
    ``max_prompt_chars`` makes longer prompts fail as an over-long prompt would."""

    def __init__(
        self,
        answer: Callable[[list[dict]], str] = findings_for_marked_lines,
        context_length: int = 8192,
        max_prompt_chars: int | None = None,
        model_id: str = "fake-reviewer",
        busy_replies: int = 0,
    ):
        self.answer = answer
        self.model_id = model_id
        self.busy_replies = busy_replies  # answer this many requests with 503 + Retry-After first
        self.context_length = context_length
        self.max_prompt_chars = max_prompt_chars
        self.requests: list[list[dict]] = []
        self.bodies: list[dict] = []  # whole request bodies, for what travels besides the messages
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._json(200, {"data": [{"id": server.model_id, "max_model_len": server.context_length}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                messages = body["messages"]
                chars = sum(len(m["content"]) for m in messages)
                if server.max_prompt_chars is not None and chars > server.max_prompt_chars:
                    message = f"prompt has {chars} tokens but the model's context is {server.max_prompt_chars} tokens"
                    return self._json(400, {"error": {"message": message}})
                with server._lock:
                    busy = server.busy_replies > 0
                    server.busy_replies -= busy
                    if not busy:
                        server.requests.append(messages)
                        server.bodies.append(body)
                if busy:
                    return self._json(503, {"error": {"message": "queue full"}}, {"Retry-After": "0.05"})
                self._stream(server.answer(messages))

            def _json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, text: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                pieces = [text[i : i + 40] for i in range(0, len(text), 40)] or [""]
                for piece in pieces:
                    self._event({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                self._event({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": len(pieces)}})
                self.wfile.write(b"data: [DONE]\n\n")

            def _event(self, payload: dict) -> None:
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")

        return Handler


@pytest.fixture
def scripted_server():
    with ScriptedServer() as server:
        yield server
