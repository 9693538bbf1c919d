"""The HTTP layer of `mimo serve`, driven over real HTTP (uvicorn on a free loopback port) against a scripted
engine, so every status code, SSE frame and cancellation can be asserted exactly."""

from __future__ import annotations

import asyncio
import json

import httpx
import pydantic
import pytest
from server_helpers import ScriptedEngine, serving, wait_for

from engine.server.app import create_app
from engine.server.metrics import ServerMetrics
from engine.server.serving import Admission, ServingContext


def make_app(engine: ScriptedEngine, queue_size: int = 8):
    ctx = ServingContext(
        engine=engine, model_names=("tiny", "alias"), metrics=ServerMetrics(), admission=Admission(queue_size)
    )
    return create_app(ctx)


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture
def url(engine):
    with serving(make_app(engine)) as base_url:
        yield base_url


def sse_payloads(body: str) -> list:
    frames = [line.removeprefix("data: ") for line in body.split("\n\n") if line]
    assert frames[-1] == "[DONE]"
    return [json.loads(frame) for frame in frames[:-1]]


def test_completion_returns_text_usage_and_passes_sampling_through(url, engine):
    body = {
        "model": "tiny",
        "prompt": "def f(",
        "max_tokens": 2,
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 7,
        "stop": "\n",
    }
    response = httpx.post(f"{url}/v1/completions", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["object"] == "text_completion" and data["model"] == "tiny"
    assert data["choices"] == [{"index": 0, "text": "Hello,", "finish_reason": "length", "logprobs": None}]
    assert data["usage"] == {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8}
    assert data["timings"]["mtp_drafts_accepted"] == 3
    sampling = engine.requests[0].sampling
    assert (sampling.max_tokens, sampling.temperature, sampling.top_p, sampling.seed, sampling.stop) == (
        2,
        0.5,
        0.9,
        7,
        ("\n",),
    )
    assert engine.requests[0].prompt == "def f("


def test_prompt_with_suffix_becomes_a_fim_request(url, engine):
    response = httpx.post(f"{url}/v1/completions", json={"prompt": "a = ", "suffix": "\nprint(a)"})
    assert response.status_code == 200
    fim = engine.requests[0].fim
    assert (fim.prefix, fim.suffix) == ("a = ", "\nprint(a)")
    assert engine.requests[0].sampling.max_tokens == 16  # OpenAI's default for completions


def test_n_samples_come_back_as_separate_choices(url):
    data = httpx.post(f"{url}/v1/completions", json={"prompt": "x", "n": 2}).json()
    assert [c["index"] for c in data["choices"]] == [0, 1]
    assert all(c["text"] == "Hello, world" and c["finish_reason"] == "stop" for c in data["choices"])


def test_streamed_completion_is_sse_ending_with_done_and_usage_when_asked(url):
    body = {"prompt": "x", "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{url}/v1/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        payloads = sse_payloads(response.read().decode())
    assert "".join(p["choices"][0]["text"] for p in payloads if p["choices"]) == "Hello, world"
    assert payloads[-2]["choices"][0]["finish_reason"] == "stop"
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["completion_tokens"] == 3
    assert payloads[-1]["timings"]["mtp_drafts_proposed"] == 4


def test_chat_returns_an_assistant_message(url, engine):
    body = {
        "model": "alias",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
    }
    data = httpx.post(f"{url}/v1/chat/completions", json=body).json()
    assert data["object"] == "chat.completion" and data["model"] == "tiny"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "Hello, world"}
    assert [m.role for m in engine.requests[0].messages] == ["system", "user"]


def test_streamed_chat_sends_the_role_once_then_content_deltas(url):
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        payloads = sse_payloads(response.read().decode())
    deltas = [p["choices"][0]["delta"] for p in payloads]
    assert deltas[0]["role"] == "assistant" and all(d["role"] is None for d in deltas[1:])
    assert "".join(d["content"] for d in deltas) == "Hello, world"
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"prompt": "x", ', "not valid JSON"),
        (json.dumps({"prompt": "x", "temperature": 5}).encode(), "temperature"),
        (json.dumps({"max_tokens": 3}).encode(), "prompt"),
        (json.dumps({"prompt": ["a", "b"]}).encode(), "one prompt per request"),
        (json.dumps({"prompt": "x", "logprobs": 5}).encode(), "logprobs: not supported by mimo serve"),
    ],
)
def test_bad_requests_get_400_with_an_openai_error_body(url, content, expected):
    response = httpx.post(f"{url}/v1/completions", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert expected in response.json()["error"]["message"]


def test_an_unknown_chat_role_is_a_400(url):
    body = {"messages": [{"role": "wizard", "content": "hi"}]}
    response = httpx.post(f"{url}/v1/chat/completions", json=body)
    assert response.status_code == 400 and "messages.0.role" in response.json()["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_prompt_longer_than_the_context_is_a_400_naming_both_lengths(url, stream):
    response = httpx.post(f"{url}/v1/completions", json={"prompt": "x" * 150, "stream": stream})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "150" in message and "100" in message
    assert response.json()["error"]["code"] == "context_length_exceeded"


@pytest.mark.parametrize("fail_after", [0, 1])
def test_an_engine_bug_is_a_500_before_the_first_token_and_an_in_band_error_after(fail_after):
    engine = ScriptedEngine(fail_after=fail_after)
    with serving(make_app(engine)) as url:
        plain = httpx.post(f"{url}/v1/completions", json={"prompt": "x"})
        streamed = httpx.post(f"{url}/v1/completions", json={"prompt": "x", "stream": True})
        metrics = httpx.get(f"{url}/metrics").text
    assert plain.status_code == 500 and "the engine broke" in plain.json()["error"]["message"]
    if fail_after == 0:
        assert streamed.status_code == 500
    else:
        frames = streamed.text.split("\n\n")
        assert streamed.status_code == 200 and "the engine broke" in frames[-3] and frames[-2] == "data: [DONE]"
    assert 'mimo_requests_total{endpoint="completions",outcome="error"} 2.0' in metrics


def test_an_unknown_model_name_is_a_404(url, engine):
    response = httpx.post(f"{url}/v1/completions", json={"model": "gpt-9", "prompt": "x"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert "gpt-9" in response.json()["error"]["message"] and not engine.requests


def test_an_unknown_path_is_a_404_in_the_openai_error_shape(url):
    response = httpx.post(f"{url}/v1/embeddings", json={})
    assert response.status_code == 404 and "/v1/embeddings" in response.json()["error"]["message"]


def test_models_and_health_describe_the_served_model(url):
    models = httpx.get(f"{url}/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["tiny"] and models["data"][0]["max_model_len"] == 100
    assert httpx.get(f"{url}/health").json()["status"] == "ok"


def test_metrics_count_requests_tokens_and_mtp_acceptance(url):
    for _ in range(2):
        httpx.post(f"{url}/v1/completions", json={"prompt": "abc"})
    text = httpx.get(f"{url}/metrics").text
    assert 'mimo_requests_total{endpoint="completions",outcome="ok"} 2.0' in text
    assert "mimo_generation_tokens_total 6.0" in text
    assert "mimo_mtp_drafts_proposed_total 8.0" in text and "mimo_mtp_drafts_accepted_total 6.0" in text
    assert "mimo_mtp_acceptance_rate 0.75" in text
    assert "mimo_requests_running 0.0" in text


def test_a_full_queue_answers_503_with_retry_after_and_frees_the_slot_afterwards():
    engine = ScriptedEngine(stall_after=1)
    with serving(make_app(engine, queue_size=1)) as url:
        with httpx.stream("POST", f"{url}/v1/completions", json={"prompt": "x", "stream": True}) as held:
            lines = held.iter_lines()  # kept: a dropped line iterator closes the connection when collected
            next(lines)  # the first chunk arrived: the only slot is taken
            refused = httpx.post(f"{url}/v1/completions", json={"prompt": "y"})
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) >= 1
            assert "queue is full" in refused.json()["error"]["message"]
        assert wait_for(engine.closed_early)
        engine.stall_after = None
        assert httpx.post(f"{url}/v1/completions", json={"prompt": "z"}).status_code == 200


@pytest.mark.parametrize("endpoint", ["completions", "chat/completions"])
def test_a_client_disconnecting_mid_stream_closes_the_engines_generation(endpoint):
    engine = ScriptedEngine(stall_after=1)
    body = {"prompt": "x", "messages": [{"role": "user", "content": "x"}], "stream": True}
    with serving(make_app(engine)) as url:
        with httpx.stream("POST", f"{url}/v1/{endpoint}", json=body) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
            assert not engine.closed_early.wait(0.3), "closed while the client was still reading"
        assert wait_for(engine.closed_early), "the engine kept generating after the client left"
        metrics = httpx.get(f"{url}/metrics").text
        assert "mimo_requests_running 0.0" in metrics
        assert 'outcome="cancelled"} 1.0' in metrics


@pytest.mark.parametrize(
    ("engine_kwargs", "stream"),
    [({"stall_after": 1}, False), ({"first_delay_s": 30.0}, True), ({"first_delay_s": 30.0}, False)],
    ids=["plain-mid-generation", "stream-before-first-token", "plain-before-first-token"],
)
async def test_a_client_disconnecting_while_waiting_closes_the_engines_generation(engine_kwargs, stream):
    engine = ScriptedEngine(**engine_kwargs)
    with serving(make_app(engine)) as url:
        async with httpx.AsyncClient() as client:
            body = {"prompt": "x", "stream": stream}
            request = asyncio.create_task(client.post(f"{url}/v1/completions", json=body))
            assert await asyncio.to_thread(wait_for, engine.started)
            await asyncio.sleep(0.3)
            assert not engine.closed_early.is_set(), "closed while the client was still waiting"
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
        assert await asyncio.to_thread(wait_for, engine.closed_early)


def test_the_engine_is_closed_when_the_server_stops(engine):
    with serving(make_app(engine)):
        assert not engine.closed
    assert engine.closed


def test_the_official_openai_client_reads_our_answers_and_errors(url):
    import openai  # the official client (the test extra pins it)

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    completion = client.completions.create(model="tiny", prompt="x", max_tokens=2)
    assert completion.choices[0].text == "Hello," and completion.usage.total_tokens == 3
    stream = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello, world"
    assert chunks[-1].usage.completion_tokens == 3
    with pytest.raises(openai.BadRequestError, match="150"):
        client.completions.create(model="tiny", prompt="x" * 150)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-9", prompt="x")


def test_response_format_json_schema_reaches_the_engine_and_a_malformed_one_is_a_400():
    from engine.server.protocol import CompletionRequest

    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    request = CompletionRequest(prompt="x", response_format={"type": "json_schema", "json_schema": {"schema": schema}})
    assert request.sampling(8).json_schema == schema
    assert CompletionRequest(prompt="x", response_format={"type": "text"}).sampling(8).json_schema is None
    with pytest.raises(pydantic.ValidationError, match="schema"):
        CompletionRequest(prompt="x", response_format={"type": "json_schema", "json_schema": {}})


async def test_the_remote_client_sends_biases_and_penalties_and_the_server_passes_them_on(url, engine):
    from engine.api import GenerationRequest, SamplingParams, collect
    from engine.remote import RemoteEngine

    remote = RemoteEngine(url)
    sampling = SamplingParams(max_tokens=2, logit_bias={5: -100.0}, presence_penalty=0.5, frequency_penalty=-1.0)
    try:
        await collect(remote, GenerationRequest(prompt="x", sampling=sampling))
    finally:
        await remote.aclose()
    received = engine.requests[-1].sampling
    assert (received.logit_bias, received.presence_penalty, received.frequency_penalty) == ({5: -100.0}, 0.5, -1.0)
