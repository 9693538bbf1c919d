"""response_format on the native backend: grammar-constrained decoding (engine.grammar, llguidance).

A random tiny MiMo writes garbage, so when its output parses and validates, the grammar is what made it so (the
unconstrained control below shows the garbage). The shipped nano has trained MTP layers whose drafts are often
accepted, so greedy MTP output under a grammar is checked against plain decoding with both the accepted and the
rejected draft paths running.
"""

from __future__ import annotations

import asyncio
import json
import threading

import jsonschema
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.api import BadRequest, EngineError, GenerationRequest, Message, SamplingParams, collect
from engine.grammar import MAX_SCHEMA_CHARS, MAX_SCHEMA_DEPTH, GrammarState, SchemaRejected
from engine.native import NativeEngine
from engine.registry import NANO_DIR

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Every value is short (bounded strings, arrays and integers; no extra properties), so even random weights
# finish the value well within max_tokens: a sample that ends at the length limit would prove nothing.
REPORT = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "level": {"enum": ["low", "high"]},
        "count": {"type": "integer", "minimum": 0, "maximum": 99},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 3},
        "note": {"type": ["string", "null"], "maxLength": 8},
    },
    "required": ["ok", "level", "count", "tags"],
    "additionalProperties": False,
}
# Shaped like mimo review's findings, with unbounded strings (nano greedy can loop inside one).
FINDINGS = {
    "type": "object",
    "properties": {
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "start_line": {"type": "integer", "minimum": 1},
                    "severity": {"enum": ["error", "warning", "note"]},
                    "rule": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"},
                },
                "required": ["path", "start_line", "severity", "rule"],
            },
        }
    },
    "required": ["findings"],
}
PROMPTS = ["def parse(text):\n", "import sys\n", "Answer in JSON:", "class Tree:\n    def"]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return NativeEngine(tiny_model_dir, threads=1)


@pytest.fixture(scope="module")
def nano():
    if not (NANO_DIR / "config.json").is_file():
        pytest.skip("the nano checkpoint is not in engine/assets/nano (make setup puts it there)")
    return NativeEngine(NANO_DIR, threads=1)


def request(prompt: str = PROMPTS[0], schema: dict | None = REPORT, use_mtp: bool = True, **sampling):
    sampling = {"max_tokens": 160, **sampling}
    return GenerationRequest(prompt=prompt, sampling=SamplingParams(json_schema=schema, **sampling), use_mtp=use_mtp)


async def token_ids(engine, req: GenerationRequest) -> tuple[list[int], object]:
    chunks = [chunk async for chunk in engine.generate(req)]
    return [t for c in chunks for t in c.token_ids], chunks[-1]


def assert_valid(text: str, schema: dict) -> None:
    jsonschema.validate(json.loads(text), schema)


# ---- output that stops is valid --------------------------------------------------------------------------


async def test_without_the_grammar_the_random_model_writes_no_json(tiny):
    result = await collect(tiny, request(schema=None, n=3, temperature=1.0, seed=1, max_tokens=40))
    for text in result.texts:
        with pytest.raises(ValueError):
            json.loads(text)


@pytest.mark.parametrize("use_mtp", [False, True])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
async def test_every_sample_of_the_random_model_stops_with_a_valid_value(tiny, use_mtp, temperature):
    for prompt in PROMPTS[:2]:
        result = await collect(tiny, request(prompt, use_mtp=use_mtp, temperature=temperature, seed=5, n=3))
        assert result.finish_reasons == ["stop"] * 3, result.texts
        for text in result.texts:
            assert_valid(text, REPORT)


async def test_json_object_gives_an_object_and_chat_requests_are_constrained_too(tiny):
    result = await collect(tiny, request(schema={"type": "object"}, temperature=1.0, seed=2, n=4))
    chat = GenerationRequest(
        messages=(Message("user", "Report as JSON."),),
        sampling=SamplingParams(max_tokens=160, json_schema=REPORT, temperature=1.0, seed=3),
    )
    answer = await collect(tiny, chat)
    for text, reason in zip(result.texts, result.finish_reasons):
        assert reason != "stop" or isinstance(json.loads(text), dict)
    assert answer.finish_reasons == ["stop"]
    assert_valid(answer.texts[0], REPORT)


async def test_a_sample_cut_by_max_tokens_is_reported_as_length_and_is_the_start_of_the_whole_value(tiny):
    whole = await collect(tiny, request(PROMPTS[0]))
    cut = await collect(tiny, request(PROMPTS[0], max_tokens=4))
    assert whole.finish_reasons == ["stop"] and cut.finish_reasons == ["length"]
    assert whole.texts[0].startswith(cut.texts[0]) and len(cut.texts[0]) < len(whole.texts[0])
    with pytest.raises(ValueError):
        json.loads(cut.texts[0])


async def test_the_schema_is_compiled_off_the_event_loop_once(tiny):
    schema = {**REPORT, "title": "compiled off the loop"}  # a schema no other test compiles
    compile_in = tiny.grammars.compile
    threads, grammars = [], []

    def spy(given: dict):
        threads.append(threading.current_thread())
        grammars.append(compile_in(given))
        return grammars[-1]

    tiny.grammars.compile = spy
    try:
        for seed in (1, 2):
            result = await collect(tiny, request(schema=schema, temperature=1.0, seed=seed, n=2))
            assert result.finish_reasons == ["stop"] * 2
            for text in result.texts:
                assert_valid(text, schema)
    finally:
        del tiny.grammars.compile
    assert len(threads) == 2 and threading.main_thread() not in threads
    assert grammars[0] is grammars[1]  # the second request reused the compiled grammar


LEAF = st.sampled_from(
    [
        {"type": "boolean"},
        {"type": "null"},
        {"type": "integer", "minimum": -5, "maximum": 50},
        {"type": "number", "minimum": 0, "maximum": 1},
        {"type": "string", "maxLength": 4},
        {"type": "string", "pattern": "^[a-c]{1,3}$"},
        {"enum": ["x", 1, None]},
        {"const": "fixed"},
        {"type": "string", "format": "date"},
    ]
)


def composite(children: st.SearchStrategy) -> st.SearchStrategy:
    objects = st.dictionaries(st.sampled_from(["a", "b", "c"]), children, min_size=1, max_size=3).flatmap(
        lambda props: st.builds(
            lambda required: {
                "type": "object",
                "properties": props,
                "required": sorted(required),
                "additionalProperties": False,
            },
            st.sets(st.sampled_from(sorted(props))),
        )
    )
    arrays = st.builds(
        lambda items, most: {"type": "array", "items": items, "maxItems": most}, children, st.integers(0, 3)
    )
    either = st.lists(children, min_size=2, max_size=3).map(lambda options: {"anyOf": options})
    return objects | arrays | either


SCHEMAS = st.recursive(LEAF, composite, max_leaves=6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=SCHEMAS, seed=st.integers(0, 2**32), use_mtp=st.booleans(), temperature=st.sampled_from([0.0, 1.5]))
def test_whatever_the_schema_a_sample_that_stops_validates(tiny, schema, seed, use_mtp, temperature):
    result = asyncio.run(
        collect(tiny, request(schema=schema, use_mtp=use_mtp, temperature=temperature, seed=seed, max_tokens=120))
    )
    for text, reason in zip(result.texts, result.finish_reasons):
        if reason == "stop":
            assert_valid(text, schema)


async def test_a_plain_hugging_face_checkpoint_is_constrained_too(plain_qwen2_dir):
    engine = NativeEngine(plain_qwen2_dir, threads=1)
    try:
        result = await collect(engine, request(temperature=1.0, seed=8, n=3))
    finally:
        await engine.aclose()
    assert result.finish_reasons == ["stop"] * 3
    for text in result.texts:
        assert_valid(text, REPORT)


# ---- MTP stays lossless ----------------------------------------------------------------------------------


@pytest.mark.parametrize("draft_tokens", [1, 3])
async def test_greedy_mtp_under_a_grammar_is_plain_greedy_decoding_on_the_random_model(tiny_model_dir, draft_tokens):
    engine = NativeEngine(tiny_model_dir, threads=1, draft_tokens=draft_tokens)
    try:
        for prompt in PROMPTS:
            plain, _ = await token_ids(engine, request(prompt, use_mtp=False))
            mtp, last = await token_ids(engine, request(prompt, use_mtp=True))
            assert mtp == plain, prompt
            assert last.timings.mtp_steps > 0
    finally:
        await engine.aclose()


@pytest.mark.slow
@pytest.mark.parametrize("draft_tokens", [1, 3])
async def test_greedy_mtp_under_a_grammar_is_plain_greedy_decoding_on_nano(draft_tokens):
    if not (NANO_DIR / "config.json").is_file():
        pytest.skip("the nano checkpoint is not in engine/assets/nano")
    engine = NativeEngine(NANO_DIR, threads=1, draft_tokens=draft_tokens)
    proposed = accepted = 0
    try:
        for prompt in PROMPTS:
            for schema in (REPORT, FINDINGS):
                plain, plain_last = await token_ids(engine, request(prompt, schema, use_mtp=False, max_tokens=96))
                mtp, last = await token_ids(engine, request(prompt, schema, use_mtp=True, max_tokens=96))
                assert mtp == plain, (prompt, schema is REPORT)
                assert last.finish_reason == plain_last.finish_reason
                proposed += last.timings.mtp_drafts_proposed
                accepted += last.timings.mtp_drafts_accepted
    finally:
        await engine.aclose()
    assert 0 < accepted < proposed  # both the accepted and the rejected paths ran


async def test_sampled_mtp_under_a_grammar_on_nano_stops_valid_and_repeats_with_its_seed(nano):
    first = await collect(nano, request(PROMPTS[2], use_mtp=True, temperature=0.8, seed=11, n=3))
    again = await collect(nano, request(PROMPTS[2], use_mtp=True, temperature=0.8, seed=11, n=3))
    assert first.texts == again.texts and len(set(first.texts)) > 1
    assert first.timings.mtp_drafts_accepted > 0
    for text, reason in zip(first.texts, first.finish_reasons):
        assert reason == "stop"
        assert_valid(text, REPORT)


def test_the_matcher_rolls_back_rejected_drafts_and_a_stop_draft(tiny):
    """After speculating drafts and settling, the state is that of a matcher fed only what was kept."""
    grammar = tiny.grammars.compile({"type": "array", "items": {"type": "integer"}, "maxItems": 4})
    tokens = tiny.tokenizer.encode("[1, 23, 4]")
    stop = min(tiny.stop_ids)
    assert len(tokens) >= 6

    def mask_after(kept: list[int]) -> torch.Tensor:
        fresh = GrammarState(grammar, 1)
        for token in kept:
            fresh.advance(token)
        fresh.fill(0)
        return fresh.bitmask[0].clone()

    def mask_of(state: GrammarState) -> torch.Tensor:
        state.fill(0)
        return state.bitmask[0].clone()

    state = GrammarState(grammar, 4)
    state.advance(tokens[0])
    for draft in tokens[1:4]:
        state.speculate(draft)
    state.settle(1, tokens[2])  # the first draft kept, the next two rejected, the correction as drafted
    assert torch.equal(mask_of(state), mask_after(tokens[:3]))
    for draft in tokens[3:-1]:
        state.advance(draft)
    state.speculate(tokens[-1])  # "]" completes the value; a stop draft follows it
    state.speculate(stop)
    assert state.ended and state.speculated == 1
    state.settle(0, tokens[-1])  # both rejected, the stop draft included; the correction is "]" again
    assert not state.ended
    assert torch.equal(mask_of(state), mask_after(tokens))
    state.speculate(stop)
    state.settle(1, stop)  # the stop draft accepted
    assert state.ended
    assert not GrammarState(grammar, 1).matcher.is_accepting()
    with pytest.raises(EngineError, match="before the response_format value was complete"):
        GrammarState(grammar, 1).advance(stop)


# ---- the other sampling parameters, batching, n > 1 --------------------------------------------------------


async def test_a_bias_never_revives_a_token_the_grammar_forbids_and_may_move_among_allowed_ones(tiny):
    boolean = {"type": "boolean"}
    greedy, _ = await token_ids(tiny, request(schema=boolean, temperature=0.0))
    first = greedy[0]
    brace = tiny.tokenizer.convert_tokens_to_ids("{")
    pushed = await collect(tiny, request(schema=boolean, logit_bias={brace: 100.0}, temperature=1.0, seed=4, n=4))
    moved, _ = await token_ids(tiny, request(schema=boolean, logit_bias={first: -100.0}))
    for text in [*pushed.texts, tiny.tokenizer.decode(moved)]:  # chunks carry no stop token
        assert json.loads(text) in (True, False)
    assert moved[0] != first


async def test_penalties_apply_under_the_grammar(tiny):
    plain = await collect(tiny, request(PROMPTS[1]))
    penalised = await collect(tiny, request(PROMPTS[1], frequency_penalty=2.0, presence_penalty=2.0))
    assert penalised.finish_reasons == ["stop"]
    assert_valid(penalised.texts[0], REPORT)
    assert penalised.texts != plain.texts


async def test_a_stop_string_cuts_the_value_where_it_appears(tiny):
    whole = await collect(tiny, request(PROMPTS[0]))
    cut_at = whole.texts[0].index('"level"')
    cut = await collect(tiny, request(PROMPTS[0], stop=('"level"',)))
    assert cut.texts[0] == whole.texts[0][:cut_at] and cut.finish_reasons == ["stop"]


async def test_batched_requests_with_and_without_grammars_decode_as_they_do_alone(tiny_model_dir):
    requests = [
        request(PROMPTS[0]),
        request(PROMPTS[1], schema=None, max_tokens=24),
        request(PROMPTS[2], schema=FINDINGS, max_tokens=48),
        request(PROMPTS[3], use_mtp=False),
        request(PROMPTS[0], temperature=1.0, seed=9, n=3),
    ]
    alone = NativeEngine(tiny_model_dir, threads=1, batching=False)
    batched = NativeEngine(tiny_model_dir, threads=1)
    try:
        expected = [await collect(alone, r) for r in requests]
        together = await asyncio.gather(*(collect(batched, r) for r in requests))
    finally:
        await alone.aclose()
        await batched.aclose()
    for one, other in zip(expected, together):
        assert other.texts == one.texts and other.finish_reasons == one.finish_reasons
    for text in together[4].texts:
        assert_valid(text, REPORT)


# ---- schemas refused -------------------------------------------------------------------------------------


def deeply_nested(levels: int) -> dict:
    schema: dict = {"type": "integer"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema}
    return schema


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "integer", "not": {"const": 3}}, "Unimplemented keys"),  # never accepted and ignored
        ({"type": "array", "uniqueItems": True}, "uniqueItems"),
        ({"type": "foo"}, "foo"),
        ({"type": "integer", "minimum": 5, "maximum": 1}, "minimum"),
        ({"type": "string", "pattern": "(?<=a)b"}, "regex"),
        ({"$ref": "http://127.0.0.1:9/schema.json"}, "does not fetch"),  # nothing leaves the machine
        ({"$ref": "#"}, "no JSON value"),
        ({"enum": []}, "nsatisfiable"),
        (deeply_nested(MAX_SCHEMA_DEPTH + 5), "nests deeper"),
        (deeply_nested(5000), "nests deeper"),  # deeper than Python's stack
        ({"enum": ["v" * 100] * (MAX_SCHEMA_CHARS // 100)}, "characters"),
        ({"type": "number", "maximum": float("nan")}, "not JSON"),
        ({"type": "object", "required": ["\ud800"]}, "lone surrogate"),
        ({"type": "string", "minLength": 10**12}, "cannot be enforced"),
        ({"type": "integer", "minimum": 10**40}, "integer range"),
    ],
)
async def test_a_schema_that_cannot_be_enforced_is_a_bad_request_naming_response_format(tiny, schema, words):
    with pytest.raises(SchemaRejected, match=words) as refused:
        await collect(tiny, request(schema=schema))
    assert isinstance(refused.value, BadRequest) and str(refused.value).startswith("response_format: ")
    assert refused.value.param == "response_format"
