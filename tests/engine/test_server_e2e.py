"""The real `mimo serve` process (native backend, tiny random MiMo model) on a free loopback port, driven over
HTTP: streaming, disconnect, queue limit, errors, metrics and the command's own failures."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest
from server_helpers import free_port, metric_value, mimo_serve

pytestmark = pytest.mark.slow

GREEDY = {"prompt": "import os\n", "max_tokens": 10, "temperature": 0}
# Lasts seconds whatever the random model does: a request ends only when all 16 samples have stopped.
LONG = {"prompt": "def f():\n", "max_tokens": 1000, "temperature": 1.0, "seed": 0, "n": 16}


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    with mimo_serve(tiny_model_dir, "--queue-size", "2") as (url, process):
        yield url, process


@pytest.fixture
def url(server):
    return server[0]


def test_streamed_text_equals_the_plain_response(url):
    plain = httpx.post(f"{url}/v1/completions", json=GREEDY, timeout=120).json()
    with httpx.stream("POST", f"{url}/v1/completions", json={**GREEDY, "stream": True}, timeout=120) as response:
        frames = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    assert frames[-1] == "[DONE]"
    streamed = "".join(json.loads(frame)["choices"][0]["text"] for frame in frames[:-1])
    assert streamed == plain["choices"][0]["text"] and plain["usage"]["completion_tokens"] == 10


def test_chat_and_models_and_health(url, tiny_model_dir):
    chat = httpx.post(
        f"{url}/v1/chat/completions",
        timeout=120,
        json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3},
    ).json()
    assert chat["choices"][0]["message"]["role"] == "assistant" and chat["usage"]["completion_tokens"] <= 3
    models = httpx.get(f"{url}/v1/models", timeout=30).json()["data"]
    assert [(m["id"], m["max_model_len"]) for m in models] == [(tiny_model_dir.name, 1024)]
    assert httpx.get(f"{url}/health", timeout=30).json()["backend"] == "native"


def test_mtp_drafts_show_up_in_metrics(url):
    before = metric_value(url, "mimo_mtp_drafts_proposed_total")
    httpx.post(f"{url}/v1/completions", json=GREEDY, timeout=120)
    assert metric_value(url, "mimo_mtp_drafts_proposed_total") > before
    assert 0.0 <= metric_value(url, "mimo_mtp_acceptance_rate") <= 1.0


def test_a_prompt_longer_than_the_context_names_both_lengths(url):
    response = httpx.post(f"{url}/v1/completions", json={"prompt": "x = 1\n" * 700}, timeout=120)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "1024" in message and "prompt has" in message


def test_bad_json_is_a_400(url):
    response = httpx.post(
        f"{url}/v1/completions", content=b"{nope", headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]


def test_disconnecting_mid_stream_cancels_the_generation(url):
    cancelled = 'mimo_requests_total{endpoint="completions",outcome="cancelled"}'
    before = metric_value(url, cancelled)
    with httpx.stream("POST", f"{url}/v1/completions", json={**LONG, "stream": True}, timeout=120) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
    assert _eventually(lambda: metric_value(url, cancelled) == before + 1)
    assert _eventually(lambda: metric_value(url, "mimo_requests_running") == 0)


async def test_a_full_queue_answers_503_with_retry_after(url):
    async with httpx.AsyncClient(timeout=120) as client:  # 8 at once against --queue-size 2
        answers = await asyncio.gather(*(client.post(f"{url}/v1/completions", json=LONG) for _ in range(8)))
    refused = [answer for answer in answers if answer.status_code == 503]
    assert refused and sum(answer.status_code == 200 for answer in answers) >= 2
    assert all(int(answer.headers["retry-after"]) >= 1 for answer in refused)
    assert _eventually(lambda: metric_value(url, "mimo_requests_running") == 0)
    assert httpx.post(f"{url}/v1/completions", json=GREEDY, timeout=120).status_code == 200


def _eventually(condition, timeout_s: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.vllm
def test_the_vllm_backend_serves_the_same_greedy_text_as_the_native_one(url, tiny_model_dir):
    native = httpx.post(f"{url}/v1/completions", json=GREEDY, timeout=120).json()["choices"][0]["text"]
    # A small CPU KV cache and vLLM's core in-process: seconds to start, and it fits a shared CI machine.
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    with mimo_serve(tiny_model_dir, "--dtype", "float32", backend="vllm", env=env, startup_timeout_s=500) as (
        vllm_url,
        _,
    ):
        served = httpx.post(f"{vllm_url}/v1/completions", json=GREEDY, timeout=120).json()
        assert httpx.get(f"{vllm_url}/health", timeout=30).json()["backend"] == "vllm"
        assert metric_value(vllm_url, "mimo_mtp_drafts_proposed_total") > 0
    assert served["choices"][0]["text"] == native


def test_native_flags_reach_the_native_backend_that_auto_picks(tiny_model_dir):
    """No CUDA here, so `--backend auto` serves with the native backend, and `--draft-tokens 0` turns MTP off."""
    with mimo_serve(tiny_model_dir, "--draft-tokens", "0", backend="auto") as (auto_url, _):
        data = httpx.post(f"{auto_url}/v1/completions", json=GREEDY, timeout=120).json()
    assert data["usage"]["completion_tokens"] == 10
    assert data["timings"]["mtp_drafts_proposed"] == 0


def _serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mimo.cli", "serve", *args], capture_output=True, text=True, timeout=300
    )


def test_a_missing_model_is_a_one_line_error_and_exit_2(tmp_path):
    result = _serve("--model", str(tmp_path / "nowhere"), "--port", str(free_port()), "--backend", "native")
    assert result.returncode == 2
    assert "no model" in result.stderr and "Traceback" not in result.stderr


def test_a_taken_port_is_reported_before_loading(url, tiny_model_dir):
    port = url.rsplit(":", 1)[1]
    result = _serve("--model", str(tiny_model_dir), "--port", port)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "loading" not in result.stderr


def test_an_unknown_backend_is_rejected(tiny_model_dir):
    result = _serve("--model", str(tiny_model_dir), "--backend", "tpu")
    assert result.returncode == 2 and "unknown --backend 'tpu'" in result.stderr
