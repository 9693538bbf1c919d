"""Nothing leaves the machine: loading a local checkpoint and generating opens no connection and looks up no host
name, with either backend. A Python audit hook in a fresh process sees every socket connect and name lookup made
through Python (HTTP clients such as requests, httpx and urllib: what telemetry and hub calls use); a connection
made on purpose shows that it does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

AUDITED = """
import asyncio, json, socket, sys
events = []
sys.addaudithook(lambda name, args: events.append([name, repr(args)[:160]])
                 if name in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto") else None)
from engine.api import GenerationRequest, SamplingParams, collect
from engine.registry import open_engine
engine = open_engine(sys.argv[1], backend=sys.argv[2], dtype="float32")
result = asyncio.run(collect(engine, GenerationRequest(prompt="def f(", sampling=SamplingParams(max_tokens=4))))
asyncio.run(engine.aclose())
seen = list(events)
probe = socket.socket()
probe.settimeout(1)
try:
    probe.connect(("127.0.0.1", int(sys.argv[3])))  # the positive control: a closed local port
except OSError:
    pass
print(json.dumps({"while_serving": seen, "control": events[len(seen):], "tokens": result.usage.completion_tokens}))
"""


def audited_run(model_dir, backend: str, env: dict | None = None) -> dict:
    from server_helpers import free_port

    result = subprocess.run(
        [sys.executable, "-c", AUDITED, str(model_dir), backend, str(free_port())],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_native_backend_talks_to_nobody(tiny_model_dir):
    report = audited_run(tiny_model_dir, "native")
    assert report["tokens"] > 0 and report["while_serving"] == []
    assert [name for name, _ in report["control"]] == ["socket.connect"]  # the hook does see connections


@pytest.mark.vllm
@pytest.mark.slow
def test_the_vllm_backend_talks_to_nobody(tiny_model_dir):
    """vLLM in this process (its core included). Its distributed setup uses torch's C++ TCP store on the
    loopback, which Python's hook does not see; its usage report, which goes through Python's `requests`, is
    off (engine.privacy)."""
    env = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "ERROR"}
    report = audited_run(tiny_model_dir, "vllm", env)
    assert report["tokens"] > 0 and report["while_serving"] == []
