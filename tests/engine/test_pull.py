"""`mimo pull`: the name is checked before anything is fetched; offline and unreachable hubs are one line; and
a real download, against a small Hugging Face hub stand-in on a loopback port (HF_ENDPOINT) that serves the
hub's HTTP API for a tiny checkpoint: the model lands in the cache where `mimo serve` finds it, and a download
that broke off resumes from where it stopped (the stand-in sees the HTTP range). huggingface_hub itself is the
client under test; only the hub's side is a stand-in."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from server_helpers import free_port, serving

COMMIT = "0123456789abcdef0123456789abcdef01234567"
MIB = 2**20
# huggingface_hub writes what it receives in 10 MiB pieces, so a break is resumable once more than that arrived:
# the stand-in's large file breaks after 15 MiB of its 24.
BREAK_AFTER = 15 * MIB
REPO = "TinyOrg/tiny-mimo"


def mimo_pull(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mimo.cli", "pull", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nano", "nano ships with mimo-code"),
        ("./checkpoints/x", "is a local path"),
        ("a/b/c", "is not a Hugging Face model id"),
        ("org/", "is not a Hugging Face model id"),
        ("org/..", "is not a Hugging Face model id"),
        ("org name/model", "is not a Hugging Face model id"),
    ],
)
def test_names_that_are_not_model_ids_are_usage_errors(name, message):
    result = mimo_pull(name, env={"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"})
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_offline_and_unreachable_hubs_are_one_line(tmp_path):
    offline = mimo_pull(REPO, env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path)})
    assert offline.returncode == 1 and "HF_HUB_OFFLINE is set" in offline.stderr
    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = mimo_pull(REPO, env={"HF_ENDPOINT": closed, "HF_HUB_CACHE": str(tmp_path)})
    assert unreachable.returncode == 1 and f"cannot reach {closed}" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr + offline.stderr


def test_a_model_not_in_the_cache_names_mimo_pull(tmp_path):
    code = f"from engine.registry import resolve_model\nresolve_model({REPO!r})"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert f"download it with `mimo pull {REPO}`" in result.stderr


class FakeHub:
    """The hub endpoints huggingface_hub's snapshot_download uses, for one repository at one commit."""

    def __init__(self, folder: Path, break_first_download_of: str | None = None, extra: dict | None = None):
        self.files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()} | (extra or {})
        self.break_next = {break_first_download_of} if break_first_download_of else set()
        self.ranges: list[tuple[str, str]] = []  # (file, Range header) of every partial GET
        self.lock = threading.Lock()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/api/models/{org}/{name}/revision/{revision}")
        async def revision(org: str, name: str, revision: str) -> Response:
            if f"{org}/{name}" != REPO:
                return JSONResponse({"error": "Repository not found"}, 404, {"X-Error-Code": "RepoNotFound"})
            siblings = [{"rfilename": name} for name in self.files]
            return JSONResponse({"id": REPO, "modelId": REPO, "sha": COMMIT, "siblings": siblings, "private": False})

        @app.get("/api/models/{org}/{name}/tree/{revision}")
        async def tree(org: str, name: str, revision: str) -> list:
            return [
                {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                for name, data in self.files.items()
            ]

        @app.api_route("/{org}/{name}/resolve/{revision}/{filename}", methods=["GET", "HEAD"])
        async def resolve(org: str, name: str, revision: str, filename: str, request: Request) -> Response:
            data = self.files[filename]
            headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
            if request.method == "HEAD":
                return Response(headers={**headers, "Content-Length": str(len(data))})
            start = 0
            if (asked := request.headers.get("range")) is not None:
                self.ranges.append((filename, asked))
                start = int(asked.removeprefix("bytes=").split("-")[0])
            with self.lock:
                broken = filename in self.break_next
                self.break_next.discard(filename)
            return StreamingResponse(
                self._body(data[start:], broken),
                status_code=206 if start else 200,
                headers={**headers, "Content-Length": str(len(data) - start)}
                | ({"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if start else {}),
            )

        return app

    async def _body(self, data: bytes, broken: bool):
        """The bytes in 1 MiB pieces; a broken download stops after BREAK_AFTER of them."""
        for start in range(0, len(data), MIB):
            if broken and start >= BREAK_AFTER:
                raise ConnectionResetError("the stand-in drops the connection")
            yield data[start : start + MIB]


def test_pull_downloads_resumes_and_leaves_a_model_the_registry_finds(tmp_path, tiny_model_dir):
    shards = {"model-extra.bin": os.urandom(24 * MIB)}  # a large file, as real checkpoints have
    hub = FakeHub(tiny_model_dir, break_first_download_of="model-extra.bin", extra=shards)
    cache = tmp_path / "cache"
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_DISABLE_XET": "1", "HF_HUB_ETAG_TIMEOUT": "10"}
    with serving(hub.app()) as url:
        env["HF_ENDPOINT"] = url
        result = mimo_pull(REPO, env=env)
        missing = mimo_pull("TinyOrg/nothing-here", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert folder.parent.name == "snapshots" and folder.name == COMMIT
    for name, data in hub.files.items():
        assert (folder / name).read_bytes() == data
    # The broken download resumed from where it stopped instead of starting over.
    [(name, asked)] = hub.ranges
    assert name == "model-extra.bin" and 0 < int(asked.removeprefix("bytes=").rstrip("-")) <= BREAK_AFTER
    assert missing.returncode == 2 and "has no model TinyOrg/nothing-here" in missing.stderr
    code = f"from engine.registry import resolve_model\nprint(resolve_model({REPO!r}))"
    found = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert found.stdout.strip() == str(folder)
