"""`response_format` over HTTP against the native engine (a random tiny MiMo: only the grammar can make its
output JSON), with the official `openai` client and raw requests: answers that stop validate, streamed or not,
and a schema the engine cannot enforce is a 400 naming `response_format`."""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest
from server_helpers import serving

from engine.native import NativeEngine
from engine.server.app import create_app
from engine.server.metrics import ServerMetrics
from engine.server.serving import Admission, ServingContext

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"enum": ["yes", "no", "maybe"]},
        "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
        "reasons": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 2},
    },
    "required": ["answer", "confidence", "reasons"],
    "additionalProperties": False,
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": SCHEMA, "strict": True}}


@pytest.fixture(scope="module")
def url(tiny_model_dir):
    engine = NativeEngine(tiny_model_dir, threads=1)
    ctx = ServingContext(engine=engine, model_names=("tiny",), metrics=ServerMetrics(), admission=Admission(16))
    with serving(create_app(ctx)) as base_url:
        yield base_url


def test_the_openai_client_gets_valid_json_from_chat_with_every_sampling_parameter(url):
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    response = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "Is 7 prime? Answer in JSON."}],
        response_format=FORMAT,
        temperature=1.0,
        seed=3,
        n=3,
        max_tokens=120,
        presence_penalty=1.0,
        frequency_penalty=0.5,
        logit_bias={"10": 5},
    )
    assert [choice.finish_reason for choice in response.choices] == ["stop"] * 3
    for choice in response.choices:
        jsonschema.validate(json.loads(choice.message.content), SCHEMA)


@pytest.mark.parametrize("use_mtp", [False, True])
def test_a_streamed_completion_is_the_same_valid_value_as_the_plain_one(url, use_mtp):
    body = {"prompt": "verdict:", "max_tokens": 120, "temperature": 0, "response_format": FORMAT, "use_mtp": use_mtp}
    plain = httpx.post(f"{url}/v1/completions", json=body, timeout=120).json()
    with httpx.stream("POST", f"{url}/v1/completions", json={**body, "stream": True}, timeout=120) as response:
        frames = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    streamed = "".join(c["text"] for frame in frames[:-1] for c in json.loads(frame)["choices"])
    assert plain["choices"][0]["finish_reason"] == "stop"
    assert streamed == plain["choices"][0]["text"]
    jsonschema.validate(json.loads(streamed), SCHEMA)


def test_json_object_gives_an_object(url):
    body = {"prompt": "{", "max_tokens": 64, "temperature": 1.0, "seed": 1, "n": 4}
    response = httpx.post(
        f"{url}/v1/completions", json={**body, "response_format": {"type": "json_object"}}, timeout=120
    ).json()
    for choice in response["choices"]:
        assert choice["finish_reason"] == "length" or isinstance(json.loads(choice["text"]), dict)
    assert any(choice["finish_reason"] == "stop" for choice in response["choices"])


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "string", "format": "no-such-format"}, "no-such-format"),
        ({"type": "array", "contains": {"const": 1}}, "contains"),
        ({"$ref": "#/$defs/missing"}, "missing"),
        ({"type": "object", "required": ["\ud800"]}, "surrogate"),
    ],
)
def test_a_schema_the_engine_cannot_enforce_is_a_400_naming_response_format(url, schema, words, stream):
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        "stream": stream,
    }
    raw = json.dumps(body)  # ASCII, so a lone surrogate travels as the escape "\ud800", as a client may send it
    response = httpx.post(
        f"{url}/v1/chat/completions", content=raw, headers={"content-type": "application/json"}, timeout=60
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "response_format" and error["type"] == "invalid_request_error"
    assert error["message"].startswith("response_format: ") and words in error["message"]


@pytest.mark.parametrize("depth", [900, 3000])  # past the engine's limit; past the body parser's too
def test_a_deeply_nested_schema_is_a_400_not_a_500(url, depth):
    raw = (
        '{"prompt": "x", "response_format": {"type": "json_schema", "json_schema": {"schema": '
        + '{"type": "array", "items": ' * depth
        + "{}"
        + "}" * depth
        + "}}}"
    )
    response = httpx.post(
        f"{url}/v1/completions", content=raw, headers={"content-type": "application/json"}, timeout=60
    )
    assert response.status_code == 400, response.text[:300]
    assert depth > 1000 or "nests deeper than" in response.json()["error"]["message"]
