"""The native backend with the values a careless or hostile request sends: extreme seeds and temperatures,
per-sample streams, biases and penalties, huge prompts (on a real tiny checkpoint)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from engine.api import BadRequest, GenerationRequest, PromptTooLong, SamplingParams, collect
from engine.native import NativeEngine

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    engine = NativeEngine(tiny_model_dir, threads=1)
    yield engine
    asyncio.run(engine.aclose())


def request(prompt: str = "def parse(text):\n", use_mtp: bool = True, **sampling) -> GenerationRequest:
    sampling.setdefault("max_tokens", 8)
    return GenerationRequest(prompt=prompt, sampling=SamplingParams(**sampling), use_mtp=use_mtp)


async def texts(engine, **kwargs) -> list[str]:
    return (await collect(engine, request(**kwargs))).texts


@pytest.mark.parametrize("use_mtp", [True, False])
@pytest.mark.parametrize(
    "sampling",
    [{"temperature": 1e-38}, {"temperature": 5e-324}, {"temperature": 1.0, "top_p": 1e-300}],
    ids=["temperature-1e-38", "temperature-5e-324", "top_p-1e-300"],
)
async def test_tiny_temperatures_and_top_p_decode_like_greedy(engine, use_mtp, sampling):
    greedy = await texts(engine, use_mtp=use_mtp)
    assert await texts(engine, use_mtp=use_mtp, n=2, seed=5, **sampling) == greedy * 2


@pytest.mark.parametrize("seed", [2**64 - 1, -(2**63), 0])
async def test_every_64_bit_seed_samples_and_repeats(engine, seed):
    first = await texts(engine, temperature=1.0, seed=seed, n=2)
    assert first == await texts(engine, temperature=1.0, seed=seed, n=2)


@pytest.mark.parametrize("use_mtp", [True, False])
async def test_nearby_seeds_share_no_samples(engine, use_mtp):
    """Sample j of seed s used to be sample j - 1 of seed s + 1; now every sample has a stream of its own."""
    runs = {s: await texts(engine, use_mtp=use_mtp, temperature=1.0, seed=s, n=4) for s in (40, 41, 42)}
    samples = [text for run in runs.values() for text in run]
    assert len(set(samples)) == len(samples) == 12
    assert runs[41] == await texts(engine, use_mtp=use_mtp, temperature=1.0, seed=41, n=4)  # still repeatable


async def test_a_bias_against_the_greedy_first_token_changes_the_first_token(engine):
    free = await collect(engine, request(max_tokens=4))
    first = engine.tokenizer.encode(free.texts[0])[0]
    biased = await collect(engine, request(max_tokens=4, logit_bias={first: -100.0}))
    assert engine.tokenizer.encode(biased.texts[0])[0] != first
    favoured = await collect(engine, request(max_tokens=4, logit_bias={300: 100.0}))
    assert engine.tokenizer.encode(favoured.texts[0])[:4] == [300] * 4


async def test_a_frequency_penalty_breaks_a_repetition(engine):
    prompt = "x = [" + "1, " * 40
    free = await texts(engine, prompt=prompt, max_tokens=24)
    penalised = await texts(engine, prompt=prompt, max_tokens=24, frequency_penalty=2.0)
    present = await texts(engine, prompt=prompt, max_tokens=24, presence_penalty=2.0)
    assert penalised != free and present != free


@pytest.mark.parametrize(
    ("sampling", "message"),
    [
        ({"logit_bias": {10**6: 1.0}}, "token id 1000000 is not in the vocabulary"),
        ({"seed": 2**64}, "seed must be an integer"),
        ({"frequency_penalty": float("nan")}, "frequency_penalty"),
    ],
)
async def test_values_out_of_range_are_a_bad_request(engine, sampling, message):
    with pytest.raises(BadRequest, match=message):
        await collect(engine, request(**sampling))


async def test_prompts_are_tokenized_off_the_event_loop_and_never_read_past_what_fits(engine):
    seen: list[tuple[str, int]] = []
    encode = engine.tokenizer.encode

    def recording(text, *args, **kwargs):
        seen.append((threading.current_thread().name, len(text)))
        return encode(text, *args, **kwargs)

    engine.tokenizer.encode = recording
    try:
        huge = "x = 1\n" * 2_000_000  # 12 MB
        with pytest.raises(PromptTooLong, match="counting only its first"):
            await collect(engine, request(prompt=huge))
        await collect(engine, request(prompt="import os\n"))
    finally:
        del engine.tokenizer.encode
    assert all(thread.startswith("mimo-tokenize") for thread, _ in seen)
    assert max(length for _, length in seen) == engine.prompt_tokenizer.max_chars < len(huge) / 50
