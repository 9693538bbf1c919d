"""What `mimo serve` does with input it refuses: every syntactically valid request gets an answer (200, or a
4xx in OpenAI's error shape naming what was wrong), never a 500. Driven over real HTTP (uvicorn on a loopback
port), against the scripted engine for the HTTP layer and against the native engine on a tiny checkpoint."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from server_helpers import ScriptedEngine, serving

from engine.native import NativeEngine
from engine.server.app import create_app
from engine.server.metrics import ServerMetrics
from engine.server.serving import Admission, ServingContext

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_app(engine, max_body_bytes: int | None = None):
    ctx = ServingContext(engine=engine, model_names=("tiny",), metrics=ServerMetrics(), admission=Admission(64))
    if max_body_bytes is not None:
        ctx.max_body_bytes = max_body_bytes
    return create_app(ctx)


@pytest.fixture(scope="module")
def scripted_url():
    with serving(make_app(ScriptedEngine(), max_body_bytes=4096)) as url:
        yield url


@pytest.fixture(scope="module")
def native(tiny_model_dir):
    engine = NativeEngine(tiny_model_dir, threads=1)
    with serving(make_app(engine)) as url:
        yield url, engine


def post(url: str, path: str, raw: str | bytes, **headers) -> httpx.Response:
    headers = {"content-type": "application/json", **headers}
    return httpx.post(f"{url}/v1/{path}", content=raw, headers=headers, timeout=120)


def error_of(response: httpx.Response) -> dict:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()["error"]


# ---- one refusal per kind of bad value ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "raw", "param", "words"),
    [
        ("completions", '{"prompt": "x", "seed": 18446744073709551616}', "seed", "-2**63 to 2**64 - 1"),
        ("completions", '{"prompt": "x", "seed": 1e30, "n": 2}', "seed", "-2**63 to 2**64 - 1"),
        ("completions", '{"prompt": "x", "seed": -9223372036854775809}', "seed", "64 bits"),
        ("chat/completions", '{"messages": [{"role": "user", "content": "x"}], "seed": 2e19}', "seed", "2**64"),
        ("completions", '{"prompt": "x", "temperature": NaN}', "temperature", "finite number"),
        ("completions", '{"prompt": "x", "top_p": Infinity}', "top_p", "finite number"),
        ("completions", '{"prompt": "\\ud800"}', "prompt", "lone surrogate (\\ud800 at character 0)"),
        ("completions", '{"prompt": ["ok \\udfff"]}', "prompt", "lone surrogate"),
        ("completions", '{"prompt": "x", "suffix": "\\ud800"}', "suffix", "lone surrogate"),
        ("completions", '{"prompt": "x", "model": "\\ud800"}', "model", "lone surrogate"),
        ("completions", '{"prompt": "x", "stop": ["\\ud800"]}', "stop", "lone surrogate"),
        ("chat/completions", '{"messages": [{"role": "user", "content": "\\ud800"}]}', "messages.0.content", "lone"),
        (
            "completions",
            '{"prompt": "x", "response_format": {"type": "json_schema", "json_schema": "x"}}',
            "response_format.json_schema",
            "object",
        ),
        ("completions", '{"prompt": "x", "response_format": {"type": "json_schema"}}', "response_format", "schema"),
        ("completions", '{"prompt": "x", "response_format": {"type": "xml"}}', "response_format.type", "json_schema"),
        ("completions", '{"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}', "stop", "at most 4 stop sequences"),
        ("completions", json.dumps({"prompt": "x", "stop": "s" * 1001}), "stop", "at most 1000 characters"),
        ("completions", '{"prompt": "x", "logit_bias": {"abc": 1}}', "logit_bias.abc.[key]", "integer"),
        ("completions", '{"prompt": "x", "logit_bias": {"5": -101}}', "logit_bias.5", "-100"),
        ("completions", '{"prompt": "x", "presence_penalty": 3}', "presence_penalty", "2"),
        ("completions", '{"prompt": "x", "top_k": 5}', "top_k", "not supported by mimo serve"),
        ("chat/completions", '{"messages": [{"role": "user", "content": "x"}], "tools": [{}]}', "tools", "not sup"),
    ],
)
def test_a_bad_value_is_a_400_naming_the_field(scripted_url, path, raw, param, words):
    response = post(scripted_url, path, raw)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["param"] == param and words in error["message"], error
    assert error["message"].startswith(f"{param}: ")


def test_default_values_of_unsupported_parameters_are_served(scripted_url):
    raw = json.dumps({"prompt": "x", "top_k": -1, "logprobs": None, "best_of": 1, "tools": [], "echo": False})
    assert post(scripted_url, "completions", raw).status_code == 200


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_not_sent_as_json_names_the_content_type_header(scripted_url, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    response = httpx.post(f"{scripted_url}/v1/completions", content=b'{"prompt": "x"}', headers=headers)
    assert response.status_code == 400
    assert "Content-Type: application/json" in error_of(response)["message"]


def test_a_body_over_the_limit_is_a_413_before_it_is_read(scripted_url):
    big = json.dumps({"prompt": "x" * 5000})
    response = post(scripted_url, "completions", big)
    assert response.status_code == 413 and "4096 bytes" in error_of(response)["message"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b" " * 1000
        yield b'{"prompt": "x"}'

    response = httpx.post(
        f"{scripted_url}/v1/completions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and "4096 bytes" in error_of(response)["message"]
    assert post(scripted_url, "completions", '{"prompt": "x"}').status_code == 200  # and the server goes on


# ---- the native engine: values that used to fail inside the sampler -----------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "values",
    [
        {"temperature": 1e-38},
        {"temperature": 5e-324, "n": 2},
        {"top_p": 1e-300},
        {"seed": 2**64 - 1, "n": 3, "temperature": 1.0},
        {"seed": -(2**63), "temperature": 1.0},
        {"frequency_penalty": 2.0, "presence_penalty": -2.0, "logit_bias": {"7": 100, "8": -100}},
    ],
)
def test_extreme_valid_values_are_answered_by_the_native_engine(native, values, stream):
    url, _ = native
    raw = json.dumps({"prompt": "def f(", "max_tokens": 4, "stream": stream, **values})
    response = post(url, "completions", raw)
    assert response.status_code == 200, response.text
    assert "server_error" not in response.text


def test_health_answers_while_a_prompt_is_being_tokenized(native):
    url, engine = native
    release, entered = threading.Event(), threading.Event()
    encode = engine.tokenizer.encode

    def stalled(text, *args, **kwargs):
        entered.set()
        release.wait(30)
        return encode(text, *args, **kwargs)

    async def scenario() -> tuple[int, int]:
        async with httpx.AsyncClient(timeout=60) as client:
            pending = asyncio.create_task(client.post(f"{url}/v1/completions", json={"prompt": "x", "max_tokens": 1}))
            assert await asyncio.to_thread(entered.wait, 30)
            health = await client.get(f"{url}/health", timeout=5)  # would time out on a blocked event loop
            release.set()
            return health.status_code, (await pending).status_code

    engine.tokenizer.encode = stalled
    try:
        assert asyncio.run(scenario()) == (200, 200)
    finally:
        release.set()
        del engine.tokenizer.encode


def test_a_prompt_far_over_the_context_is_refused_without_reading_all_of_it(native):
    url, engine = native
    response = post(url, "completions", json.dumps({"prompt": "y = 2\n" * 1_000_000}))  # 6 MB
    assert response.status_code == 400
    assert error_of(response)["code"] == "context_length_exceeded"
    assert f"counting only its first {engine.prompt_tokenizer.max_chars}" in error_of(response)["message"]


# ---- property: any body, any endpoint -----------------------------------------------------------------------

TEXT = st.text(st.characters() | st.sampled_from(["\ud800", "\udfff", "\x00", "\u2028", "\ufffd"]), max_size=12)
NUMBER = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, 1, -1, 2**63, 2**64, 1e-38, 5e-324, 1e-300])
)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBER | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
SMALL = st.integers(min_value=-1, max_value=3)  # max_tokens and n kept small: the native engine decodes them


VALID_TEXT = st.text(st.characters(), max_size=12)  # hypothesis leaves out surrogates unless asked
VALID = {
    "model": st.just("tiny"),
    "max_tokens": st.integers(1, 3),
    "n": st.integers(1, 3),
    "temperature": st.floats(0, 2) | st.sampled_from([1e-38, 5e-324, 1e-5, 2.0]),
    "top_p": st.floats(0, 1, exclude_min=True) | st.sampled_from([1e-300, 5e-324, 1.0]),
    "seed": st.integers(-(2**63), 2**64 - 1),
    "stop": VALID_TEXT | st.lists(VALID_TEXT, max_size=4),
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "presence_penalty": st.floats(-2, 2),
    "frequency_penalty": st.floats(-2, 2),
    "logit_bias": st.dictionaries(st.integers(0, 600).map(str), st.floats(-100, 100), max_size=3),
    "response_format": st.sampled_from(
        [{"type": "text"}, {"type": "json_object"}, {"type": "json_schema", "json_schema": {"schema": {}}}]
    ),
    "use_mtp": st.booleans(),
    "top_k": st.sampled_from([None, -1]),
}
# The same fields with hostile values too: out of range, of the wrong type, NaN, lone surrogates, nesting.
HOSTILE = {
    **{name: strategy | JSON for name, strategy in VALID.items()},
    "model": st.sampled_from(["tiny", "gpt-4", "\ud800"]) | JSON,
    "max_tokens": SMALL | JSON,
    "n": SMALL | JSON,
    "seed": NUMBER | JSON,
    "stop": TEXT | st.lists(TEXT, max_size=6) | JSON,
    "presence_penalty": st.floats(min_value=-3, max_value=3) | JSON,
    "logit_bias": st.dictionaries(st.integers(-5, 10**6).map(str) | TEXT, NUMBER, max_size=3) | JSON,
    "response_format": st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "json_object", "json_schema", "yaml"])},
        optional={"json_schema": JSON | st.fixed_dictionaries({"schema": JSON})},
    )
    | JSON,
    "top_k": st.sampled_from([None, -1, 0, 5]) | JSON,
    "logprobs": st.sampled_from([None, False, True, 3]) | JSON,
}
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant"]), "content": VALID_TEXT})
HOSTILE_MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "tool", "\ud800"]), "content": TEXT})


def bodies(fields: dict, text, messages) -> st.SearchStrategy:
    completion = st.fixed_dictionaries(
        {"prompt": text | st.lists(text, max_size=2)}, optional={"suffix": text, **fields}
    )
    chat = st.fixed_dictionaries(
        {"messages": st.lists(messages, max_size=3)}, optional={"max_completion_tokens": st.integers(1, 3), **fields}
    )
    return st.tuples(st.just("completions"), completion) | st.tuples(st.just("chat/completions"), chat)


BODIES = (
    bodies(VALID, VALID_TEXT, MESSAGE)
    | bodies(HOSTILE, TEXT | JSON, HOSTILE_MESSAGE | JSON)
    | st.tuples(st.sampled_from(["completions", "chat/completions"]), JSON)
)


def never_a_server_error(url: str, path: str, body) -> None:
    raw = json.dumps(body, allow_nan=True)  # NaN and Infinity, as JavaScript clients may send them
    response = post(url, path, raw)
    event(f"status {response.status_code}")  # --hypothesis-show-statistics: how many reached the engine
    assert response.status_code in (200, 400, 404, 413), (raw, response.status_code, response.text)
    if response.status_code != 200:
        error = error_of(response)
        assert isinstance(error["message"], str) and error["type"] != "server_error"
    elif response.headers["content-type"].startswith("text/event-stream"):
        assert '"server_error"' not in response.text, (raw, response.text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=BODIES)
def test_no_body_gets_a_server_error_from_the_http_layer(scripted_url, request):
    never_a_server_error(scripted_url, *request)


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=BODIES)
def test_no_body_gets_a_server_error_from_the_native_engine(native, request):
    never_a_server_error(native[0], *request)
