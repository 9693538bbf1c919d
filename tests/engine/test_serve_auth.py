"""API keys: the server on a loopback port answers 401 (OpenAI's error shape) without the key, keeps /health
open, and every client of ours sends the key it was given: RemoteEngine, the router's primary, and the official
`openai` client against the real `mimo serve` process. The key never shows up in the server's log."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from server_helpers import ScriptedEngine, free_port, mimo_serve, serving
from test_router import Changes
from test_server import make_app

from engine.api import EngineUnavailable, GenerationRequest, collect
from engine.remote import RemoteEngine
from engine.router import EngineRouter
from engine.server.app import create_app
from engine.server.auth import ApiKey, ApiKeyMiddleware

KEY = "sk-test-7f3a9c"
REQUEST = GenerationRequest(prompt="x")


def keyed_app(engine: ScriptedEngine | None = None):
    app = make_app(engine or ScriptedEngine(("hi",)))
    return create_app(app.state.ctx, api_key=KEY)


@pytest.fixture(scope="module")
def url():
    with serving(keyed_app()) as base:
        yield base


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}, {"Authorization": "Bearer"}],
)
@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/completions"), ("GET", "/v1/models"), ("GET", "/metrics")])
def test_requests_without_the_key_get_401_in_openais_shape(url, headers, method, path):
    response = httpx.request(method, url + path, headers=headers, json={"prompt": "x"}, timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    assert KEY not in response.text


def test_health_stays_open(url):
    assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok"


def test_the_key_opens_every_route(url):
    headers = {"Authorization": f"bearer {KEY}"}  # the scheme is case-insensitive
    answer = httpx.post(f"{url}/v1/completions", headers=headers, json={"prompt": "x"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["choices"][0]["text"] == "hi"
    assert httpx.get(f"{url}/metrics", headers=headers, timeout=10).status_code == 200


async def test_remote_engine_sends_its_key(url):
    engine = RemoteEngine(url, api_key=KEY, connect_retries=0)
    try:
        assert (await collect(engine, REQUEST)).texts == ["hi"]
    finally:
        await engine.aclose()
    assert KEY not in repr(engine.config)


async def test_remote_engine_without_the_key_says_to_check_it(url):
    engine = RemoteEngine(url, connect_retries=0)
    try:
        with pytest.raises(EngineUnavailable, match="HTTP 401.*check the API key"):
            await collect(engine, REQUEST)
    finally:
        await engine.aclose()


async def test_the_router_reaches_a_keyed_primary_and_falls_back_with_the_reason_when_the_key_is_wrong(url):
    router = EngineRouter(RemoteEngine(url, api_key=KEY, connect_retries=0), ScriptedEngine(("local",)))
    assert (await collect(router, REQUEST)).texts == ["hi"] and router.info().fallback_reason is None
    await router.aclose()
    changes = Changes()
    wrong = EngineRouter(
        RemoteEngine(url, api_key="nope", connect_retries=0), ScriptedEngine(("local",)), on_change=changes
    )
    assert (await collect(wrong, REQUEST)).texts == ["local"]
    assert "check the API key" in changes[-1] and "nope" not in changes[-1]
    await wrong.aclose()


@pytest.mark.slow
def test_the_real_server_with_the_key_from_the_environment(tiny_model_dir):
    env = {"MIMO_API_KEY": KEY}
    with mimo_serve(tiny_model_dir, backend="native", env=env) as (base, process):
        assert httpx.get(f"{base}/health", timeout=10).status_code == 200
        assert httpx.post(f"{base}/v1/completions", json={"prompt": "x"}, timeout=30).status_code == 401
        refused = openai.OpenAI(base_url=f"{base}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            refused.completions.create(model=tiny_model_dir.name, prompt="x", max_tokens=2)
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0)
        answer = client.completions.create(model=tiny_model_dir.name, prompt="def f():", max_tokens=3)
        assert answer.usage.completion_tokens <= 3
        cards = httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()
        assert cards["data"][0]["prompt_mode"] == "fim"  # our tokenizer: a family trained on FIM
        log = _log_of(process)
    assert "API key required" in log and KEY not in log and "wrong" not in log


def _log_of(process: subprocess.Popen) -> str:
    """The server's stderr so far (server_process sends it to a temporary file)."""
    with open(f"/proc/{process.pid}/fd/2") as log:  # reopens the (unlinked) file from its start
        return log.read()


def test_an_empty_key_is_a_usage_error():
    result = subprocess.run(
        [sys.executable, "-m", "mimo.cli", "serve", "--port", str(free_port())],
        env={**os.environ, "MIMO_API_KEY": " "},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "is empty" in result.stderr and "Traceback" not in result.stderr


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=60)), max_size=4))
def test_only_the_exact_bearer_key_opens_the_door(headers):
    """Any header bytes at all: the middleware never raises, and lets a request through only when its first
    Authorization header is `Bearer <the key>` (any case of the scheme, surrounding blanks ignored)."""
    gate = ApiKeyMiddleware(app=None, api_key=ApiKey(KEY))
    first = next((value for name, value in headers if name.lower() == b"authorization"), None)
    scheme, _, token = (first or b"").strip().partition(b" ")
    expected = first is not None and scheme.lower() == b"bearer" and token.strip() == KEY.encode()
    assert gate.allows(headers) == expected


def test_the_key_is_hidden_in_the_middlewares_repr():
    assert KEY not in repr(ApiKey(KEY)) and KEY not in repr(keyed_app().user_middleware)
