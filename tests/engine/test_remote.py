"""RemoteEngine against a real `mimo serve` process (tiny model), a closed port, and servers that lack an
endpoint, stall, or are overloaded."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from server_helpers import (
    ScriptedEngine,
    app_failing_mid_stream,
    free_port,
    metric_value,
    mimo_serve,
    serving,
    vllm_serve,
    wait_for,
)
from test_server import make_app

from engine.api import (
    BadRequest,
    EngineError,
    EngineUnavailable,
    FimParts,
    GenerationRequest,
    Message,
    ModelNotFound,
    Overloaded,
    PromptTooLong,
    SamplingParams,
    collect,
)
from engine.remote import RemoteEngine, error_from_status

GREEDY = SamplingParams(max_tokens=12, temperature=0.0)


@pytest.fixture(scope="module")
def server_url(tiny_model_dir):
    with mimo_serve(tiny_model_dir) as (url, _):
        yield url


@pytest.fixture
async def remote(server_url):
    engine = RemoteEngine(server_url)
    yield engine
    await engine.aclose()


@pytest.mark.slow
async def test_check_reads_the_model_and_its_context_length(remote, tiny_model_dir):
    info = await remote.check()
    assert info.model == tiny_model_dir.name and info.context_length == 1024 and info.backend == "remote"


@pytest.mark.slow
async def test_streamed_greedy_text_matches_the_servers_plain_response(remote, server_url):
    result = await collect(remote, GenerationRequest(prompt="def add(a, b):", sampling=GREEDY))
    plain = httpx.post(
        f"{server_url}/v1/completions",
        timeout=120,
        json={"prompt": "def add(a, b):", "max_tokens": 12, "temperature": 0},
    ).json()
    assert result.texts == [plain["choices"][0]["text"]]
    assert result.finish_reasons == [plain["choices"][0]["finish_reason"]]
    assert result.usage.completion_tokens == plain["usage"]["completion_tokens"] > 0
    assert result.timings.mtp_drafts_proposed > 0 and result.timings.time_to_first_token_s > 0
    # The server's per-position counts come through (native backend: k = 3 drafts a step by default).
    assert result.timings.mtp_drafts_proposed == 3 * result.timings.mtp_steps
    assert len(result.timings.mtp_accepted_per_position) == 3


@pytest.mark.slow
async def test_chat_streams_an_answer(remote):
    request = GenerationRequest(messages=(Message("user", "hello"),), sampling=GREEDY)
    result = await collect(remote, request)
    assert result.texts[0] and result.usage.prompt_tokens > 0


@pytest.mark.slow
async def test_fim_rendered_here_equals_fim_rendered_by_the_server(server_url):
    fim = FimParts(prefix="def area(r):\n    return ", suffix="\n\nprint(area(2))\n")
    by_server, by_client = RemoteEngine(server_url), RemoteEngine(server_url, fim_template="mimo-code")
    try:
        served = await collect(by_server, GenerationRequest(fim=fim, sampling=GREEDY))
        local = await collect(by_client, GenerationRequest(fim=fim, sampling=GREEDY))
    finally:
        await by_server.aclose()
        await by_client.aclose()
    assert served.texts == local.texts
    assert served.usage.prompt_tokens == local.usage.prompt_tokens


@pytest.mark.slow
async def test_closing_the_stream_cancels_the_generation_on_the_server(remote, server_url):
    cancelled = 'mimo_requests_total{endpoint="completions",outcome="cancelled"}'
    before = metric_value(server_url, cancelled)
    # Lasts seconds whatever the random model does: a request ends only when all 16 samples have stopped.
    long = SamplingParams(max_tokens=1000, temperature=1.0, seed=0, n=16)
    stream = remote.generate(GenerationRequest(prompt="x = 1\n", sampling=long))
    async for chunk in stream:
        if chunk.text:
            break
    await stream.aclose()
    deadline = time.monotonic() + 10
    while metric_value(server_url, cancelled) == before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert metric_value(server_url, cancelled) == before + 1
    assert metric_value(server_url, "mimo_requests_running") == 0


@pytest.mark.slow
async def test_an_unknown_model_name_is_model_not_found(server_url):
    engine = RemoteEngine(server_url, model="gpt-9")
    try:
        with pytest.raises(ModelNotFound, match="gpt-9"):
            await engine.check()
        with pytest.raises(ModelNotFound, match="gpt-9"):
            await collect(engine, GenerationRequest(prompt="x"))
    finally:
        await engine.aclose()


@pytest.mark.slow
async def test_a_prompt_longer_than_the_context_is_prompt_too_long(remote):
    with pytest.raises(PromptTooLong) as caught:
        await collect(remote, GenerationRequest(prompt="x = 1\n" * 700))
    assert caught.value.context_length == 1024 and caught.value.prompt_tokens > 1024


async def test_a_closed_port_is_engine_unavailable_after_the_retries():
    engine = RemoteEngine(f"http://127.0.0.1:{free_port()}", model="m", connect_retries=2, backoff_s=0.05)
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match="cannot reach .* after 3 attempts"):
        await collect(engine, GenerationRequest(prompt="x"))
    assert time.monotonic() - started >= 0.05 + 0.1  # it waited between attempts
    await engine.aclose()


async def test_connection_errors_are_retried_until_the_server_comes_up():
    port, scripted = free_port(), ScriptedEngine()
    engine = RemoteEngine(f"http://127.0.0.1:{port}", model="tiny", connect_retries=8, backoff_s=0.1)
    release = threading.Event()

    def start_late() -> None:
        time.sleep(0.3)
        with serving(make_app(scripted), port=port):
            release.wait(10)

    thread = threading.Thread(target=start_late)
    thread.start()
    try:
        result = await collect(engine, GenerationRequest(prompt="x"))
    finally:
        release.set()
        thread.join()
        await engine.aclose()
    assert result.texts == ["Hello, world"] and len(scripted.requests) == 1


async def test_stop_sequences_split_across_chunks_are_cut_here_and_the_stream_closed():
    scripted = ScriptedEngine(("Hello", ",", " wor", "ld<|fim", "_pad|>", "more", "text"), stall_after=6)
    with serving(make_app(scripted)) as url:
        engine = RemoteEngine(url, model="tiny", fim_template="mimo-code")  # 9 control tokens as stops
        result = await collect(engine, GenerationRequest(fim=FimParts(prefix="a", suffix="b")))
        await engine.aclose()
        assert result.texts == ["Hello, world"] and result.finish_reasons == ["stop"]
        assert len(scripted.requests[0].sampling.stop) == 4  # OpenAI's limit; the rest are enforced here
        assert wait_for(scripted.closed_early)  # the server stopped generating when the client closed


def _app_answering(status: int, hits: list, headers: dict | None = None) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/completions")
    async def completions() -> JSONResponse:
        hits.append(1)
        return JSONResponse({"error": {"message": "try later", "type": "x"}}, status_code=status, headers=headers)

    return app


async def test_an_overloaded_server_is_not_retried_and_its_retry_after_is_kept():
    hits: list = []
    with serving(_app_answering(503, hits, {"Retry-After": "7"})) as url:
        engine = RemoteEngine(url, model="m", connect_retries=3)
        with pytest.raises(Overloaded) as caught:
            await collect(engine, GenerationRequest(prompt="x"))
        await engine.aclose()
    assert caught.value.retry_after_s == 7 and len(hits) == 1


async def test_a_server_without_the_endpoint_says_so():
    with serving(_app_answering(500, [])) as url:  # serves /v1/completions only
        engine = RemoteEngine(url, model="m")
        with pytest.raises(EngineUnavailable, match="/v1/chat/completions does not exist on this server"):
            await collect(engine, GenerationRequest(messages=(Message("user", "hi"),)))
        with pytest.raises(EngineUnavailable, match="/v1/models does not exist"):
            await engine.check()
        with pytest.raises(EngineError, match="HTTP 500"):
            await collect(engine, GenerationRequest(prompt="x"))
        await engine.aclose()


async def test_a_server_that_stalls_past_the_read_timeout_is_unavailable():
    with serving(make_app(ScriptedEngine(first_delay_s=3.0))) as url:
        engine = RemoteEngine(url, model="tiny", read_timeout_s=0.3)
        with pytest.raises(EngineUnavailable, match="within 0.3 s"):  # the 3 s answer would have succeeded
            await collect(engine, GenerationRequest(prompt="x"))
        await engine.aclose()


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (
            400,
            "This model's maximum context length is 2048 tokens. However, you requested 3000 tokens "
            "(2990 in the messages, 10 in the completion).",
            PromptTooLong,
        ),
        (400, "prompt has 1500 tokens but the model's context is 1024 tokens", PromptTooLong),
        (400, "temperature: too big", BadRequest),
        (404, "The model `foo` does not exist.", ModelNotFound),  # vLLM's wording
        (404, "Not Found", EngineUnavailable),
        (401, "bad key", EngineUnavailable),
        (429, "slow down", Overloaded),
    ],
)
def test_http_errors_map_to_engine_errors(status, message, expected):
    error = error_from_status(status, message, None, "http://h/v1/completions")
    assert type(error) is expected


def test_vllm_context_error_keeps_both_lengths():
    error = error_from_status(
        400,
        "This model's maximum context length is 2048 tokens. However, you "
        "requested 3000 tokens (2990 in the messages, 10 in the completion).",
        None,
        "u",
    )
    assert (error.prompt_tokens, error.context_length) == (3000, 2048)


def test_an_unknown_fim_template_name_fails_at_construction():
    with pytest.raises(BadRequest, match="unknown FIM template 'fancy'"):
        RemoteEngine("http://127.0.0.1:1", fim_template="fancy")


def test_importing_the_client_does_not_import_torch():
    code = "import sys, engine.remote; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_an_error_inside_a_started_stream_is_raised_after_the_text_so_far():
    with serving(app_failing_mid_stream()) as url:
        engine = RemoteEngine(url, model="m")
        texts = []
        with pytest.raises(EngineError, match="GPU fell off the bus"):
            async for chunk in engine.generate(GenerationRequest(prompt="x")):
                texts.append(chunk.text)
        await engine.aclose()
    assert texts == ["par"]


# ---- against vLLM's own OpenAI server -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def vllm_url(tiny_model_dir):
    with vllm_serve(tiny_model_dir) as (url, _):
        yield url


@pytest.mark.slow
@pytest.mark.vllm
async def test_against_vllm_serve_text_fim_and_errors_match_our_server(vllm_url, server_url):
    vllm, ours = RemoteEngine(vllm_url), RemoteEngine(server_url)
    local_fim = RemoteEngine(vllm_url, fim_template="mimo-code")
    fim = FimParts(prefix="def area(r):\n    return ", suffix="\n\nprint(area(2))\n")
    try:
        assert (await vllm.check()).context_length == 1024
        prompt = GenerationRequest(prompt="def add(a, b):", sampling=GREEDY)
        assert (await collect(vllm, prompt)).texts == (await collect(ours, prompt)).texts
        fim_request = GenerationRequest(fim=fim, sampling=GREEDY)
        assert (await collect(local_fim, fim_request)).texts == (await collect(ours, fim_request)).texts
        with pytest.raises(BadRequest, match="fim_template"):  # vLLM doesn't render `suffix`
            await collect(vllm, fim_request)
        with pytest.raises(PromptTooLong) as caught:
            await collect(vllm, GenerationRequest(prompt="x = 1\n" * 700))
        assert caught.value.context_length == 1024 and caught.value.prompt_tokens > 1024
    finally:
        for engine in (vllm, ours, local_fim):
            await engine.aclose()


@pytest.mark.slow
@pytest.mark.vllm
async def test_against_vllm_serve_unknown_models_and_cancel(vllm_url):
    with pytest.raises(ModelNotFound, match="gpt-9"):
        await collect(RemoteEngine(vllm_url, model="gpt-9"), GenerationRequest(prompt="x"))
    engine = RemoteEngine(vllm_url)
    try:
        # The tiny model writes 1000 tokens in a second or two, so on a loaded machine the whole request can
        # finish before the client has read its first chunk; a cancel that works aborts at least one of three.
        outcomes = [await _cancel_after_first_text(engine, vllm_url) for _ in range(3)]
        assert "aborted" in outcomes, outcomes
    finally:
        await engine.aclose()


async def _cancel_after_first_text(engine: RemoteEngine, vllm_url: str) -> str:
    """Streams a long request, closes the stream at the first text; "aborted" if vLLM stopped generating it."""
    model = (await engine.check()).model
    finished = 'vllm:request_success_total{engine="0",finished_reason="length",model_name="%s"}' % model
    running = 'vllm:num_requests_running{engine="0",model_name="%s"}' % model
    before = metric_value(vllm_url, finished)
    stream = engine.generate(GenerationRequest(prompt="x", sampling=SamplingParams(max_tokens=1000)))
    async for chunk in stream:
        if chunk.text:
            break
    await stream.aclose()
    deadline = time.monotonic() + 3
    while metric_value(vllm_url, running) > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert metric_value(vllm_url, running) == 0
    return "aborted" if metric_value(vllm_url, finished) == before else "ran to its length"
