"""NativeEngine on a real tiny checkpoint: decoding, stops, samples, cancellation, fairness, prompt formats."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest
import torch

from engine.api import BadRequest, FimParts, GenerationRequest, Message, PromptTooLong, SamplingParams, collect
from engine.formats import render_request
from engine.native import NativeEngine

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    engine = NativeEngine(tiny_model_dir, threads=1)
    yield engine
    asyncio.run(engine.aclose())


def greedy(prompt: str, max_tokens: int = 24, use_mtp: bool = True, **sampling) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, sampling=SamplingParams(max_tokens=max_tokens, **sampling), use_mtp=use_mtp)


def reference_greedy(engine: NativeEngine, prompt: str, max_tokens: int) -> list[int]:
    """Greedy decoding by re-running the whole sequence through transformers each step (no cache); like the
    engine, it never picks a FIM sentinel."""
    ids = engine.tokenizer.encode(prompt)
    banned = torch.tensor(engine.fim_sentinel_ids, dtype=torch.long)
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(max_tokens):
            logits = engine.lm.model(torch.tensor([ids + out])).logits[0, -1]
            token = int(logits.index_fill(-1, banned, float("-inf")).argmax())
            if token in engine.stop_ids:
                break
            out.append(token)
    return out


def token_ids(result_chunks) -> list[int]:
    return [t for chunk in result_chunks for t in chunk.token_ids]


async def chunks_of(engine, request):
    return [chunk async for chunk in engine.generate(request)]


async def test_info_describes_the_checkpoint(engine):
    info = engine.info()
    assert (info.backend, info.fim_template, info.mtp_layers, info.device) == ("native", "mimo-code", 1, "cpu")
    assert info.context_length == 1024


@pytest.mark.parametrize("prompt", ["def add(a, b):\n", "import os\n\nclass Path", "x = [1, 2,"])
async def test_cached_greedy_decoding_matches_uncached_transformers(engine, prompt):
    chunks = await chunks_of(engine, greedy(prompt, use_mtp=False))
    assert token_ids(chunks) == reference_greedy(engine, prompt, 24)


async def test_text_usage_and_timings_come_with_the_final_chunk(engine):
    chunks = await chunks_of(engine, greedy("def f(x):\n", max_tokens=10, use_mtp=False))
    final = chunks[-1]
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert final.finish_reason == "length" and final.usage.completion_tokens == 10
    assert final.usage.prompt_tokens == len(engine.tokenizer.encode("def f(x):\n"))
    assert "".join(c.text for c in chunks) == engine.tokenizer.decode(token_ids(chunks))
    assert final.timings.time_to_first_token_s > 0 and final.timings.tokens_per_s > 0


async def test_a_stop_string_ends_the_text_before_it(engine):
    full = (await collect(engine, greedy("def f(x):\n", max_tokens=20))).texts[0]
    stop = full[5:8]
    result = await collect(engine, greedy("def f(x):\n", max_tokens=20, stop=(stop,)))
    assert result.finish_reasons == ["stop"]
    assert result.texts[0] == full[: full.index(stop)]


async def test_n_samples_each_finish_and_seeds_make_sampling_repeatable(engine):
    request = greedy("import ", max_tokens=8, temperature=1.0, seed=7, n=3)
    first, second = await collect(engine, request), await collect(engine, request)
    assert first.texts == second.texts and len(set(first.texts)) > 1
    assert first.finish_reasons == ["length"] * 3 and first.usage.completion_tokens == 24


async def test_a_prompt_longer_than_the_context_is_refused_with_both_lengths(engine):
    with pytest.raises(PromptTooLong, match=r"prompt has \d+ tokens but the model's context is 1024"):
        await collect(engine, greedy("x = 1\n" * 1000))


async def test_fim_and_chat_requests_render_with_the_detected_formats(engine):
    fim = GenerationRequest(fim=FimParts(prefix="def f(", suffix="):\n"), sampling=SamplingParams(max_tokens=4))
    chat = GenerationRequest(messages=(Message("user", "hi"),), sampling=SamplingParams(max_tokens=4))
    render = partial(render_request, tokenizer=engine.tokenizer, fim=engine.fim_template, model_name="tiny")
    assert render(fim) == "<|fim_prefix|><|fim_suffix|>):\n<|fim_middle|>def f("  # SPM: the middle follows the prefix
    assert render(chat) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert engine.prompt_ids(chat) == engine.tokenizer.encode(render(chat))
    assert (await collect(engine, fim)).usage.completion_tokens > 0


async def test_bad_sampling_values_are_refused(engine):
    with pytest.raises(BadRequest, match="top_p"):
        await collect(engine, greedy("x", top_p=0.0))


class ForwardCounter:
    """Counts batched model calls: wraps the engine's own ``run`` (the real forward still runs)."""

    def __init__(self, engine):
        self.calls = 0
        self.lm = engine.lm
        run = engine.lm.run

        def counted(calls):
            self.calls += 1
            return run(calls)

        self.lm.run = counted

    def remove(self):
        del self.lm.run  # the instance attribute: the class's method is back


@pytest.mark.parametrize("how", ["aclose", "cancel_task"])
async def test_cancelling_stops_compute_within_one_step(engine, how):
    counter = ForwardCounter(engine)
    try:
        stream = engine.generate(greedy("def f(x):\n", max_tokens=1000, use_mtp=False))
        if how == "aclose":
            async for _ in stream:
                if counter.calls >= 5:
                    break
            await stream.aclose()
        else:

            async def consume():
                async for _ in stream:
                    pass

            task = asyncio.create_task(consume())
            while counter.calls < 5:
                await asyncio.sleep(0.001)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        at_cancel = counter.calls
        await asyncio.sleep(0.3)
        assert 5 <= at_cancel < 100
        assert counter.calls <= at_cancel + 1  # at most the step already running
    finally:
        counter.remove()


async def test_a_short_request_is_not_starved_by_a_long_one(engine):
    finished: list[str] = []

    async def run(name: str, max_tokens: int):
        await collect(engine, greedy("class A:\n", max_tokens=max_tokens, use_mtp=False))
        finished.append(name)

    long = asyncio.create_task(run("long", 300))
    await asyncio.sleep(0.05)  # the long request is decoding
    await run("short", 5)
    assert finished == ["short"]
    await long
    assert finished == ["short", "long"]


def test_streamed_text_never_releases_part_of_a_stop_string(engine):
    from engine.text_stream import TextStream

    ids = engine.tokenizer.encode("value = compute(x)\nreturn value")
    stream = TextStream(engine.tokenizer, stop=("\nreturn",))
    released = ""
    for token in ids:
        released += stream.add([token])
        assert "\n" not in released  # the newline may start the stop string, so it is held back
        if stream.stopped:
            break
    assert stream.stopped and released == "value = compute(x)"

    unstopped = TextStream(engine.tokenizer, stop=("\nraise",))
    text = "".join(unstopped.add([token]) for token in ids) + unstopped.flush()
    assert text == "value = compute(x)\nreturn value" and not unstopped.stopped


async def test_more_requests_than_the_engine_holds_are_refused_with_a_retry_hint(tiny_model_dir):
    from engine.api import EngineUnavailable, Overloaded

    small = NativeEngine(tiny_model_dir, threads=1, max_requests=1)
    long = small.generate(greedy("class A:\n", max_tokens=500, use_mtp=False))
    await long.__anext__()  # the first request is decoding
    with pytest.raises(Overloaded, match="busy with 1 requests"):
        await collect(small, greedy("x"))
    await long.aclose()
    await small.aclose()
    with pytest.raises(EngineUnavailable, match="closed"):
        await collect(small, greedy("x"))


def test_cuda_decoding_keeps_attention_off_cudnn_and_restores_the_setting():
    """cuDNN attention re-plans for every new key length, i.e. every decode step (12x slower on an H200)."""
    import torch

    from engine.native import decode_attention_backends

    before = torch.backends.cuda.cudnn_sdp_enabled()
    with decode_attention_backends("cuda"):
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
    assert torch.backends.cuda.cudnn_sdp_enabled() == before
    with decode_attention_backends("cpu"):
        assert torch.backends.cuda.cudnn_sdp_enabled() == before


@pytest.mark.parametrize("step", [1, 3])
def test_streamed_text_equals_the_whole_decode_with_characters_split_across_tokens(engine, step):
    """Incremental detokenisation: any multi-byte character split over tokens comes out whole, once, and the
    streamed pieces add up to decoding all tokens at once; stop strings still cut where they start."""
    from engine.text_stream import TextStream

    text = "naïve café → 数据 ✓ 🐍 done\n" * 3 + "end"
    ids = engine.tokenizer.encode(text)
    assert len(ids) > len(text) / 3  # byte-level BPE: non-ASCII characters span several tokens
    stream = TextStream(engine.tokenizer)
    pieces = [stream.add(ids[i : i + step]) for i in range(0, len(ids), step)] + [stream.flush()]
    assert "".join(pieces) == engine.tokenizer.decode(ids) == text
    assert not any("\ufffd" in piece for piece in pieces)

    stopping = TextStream(engine.tokenizer, stop=("🐍",))
    released = "".join(stopping.add(ids[i : i + step]) for i in range(0, len(ids), step) if not stopping.stopped)
    assert stopping.stopped and released == "naïve café → 数据 ✓ "


@pytest.mark.parametrize("batching", [True, False])
async def test_concurrent_requests_decode_what_they_decode_alone(tiny_model_dir, batching):
    engine = NativeEngine(tiny_model_dir, threads=1, batching=batching)
    requests = [
        greedy("def main():\n", max_tokens=20),
        greedy("import os\n", max_tokens=12, use_mtp=False),
        greedy("class A:\n", max_tokens=30, n=3, temperature=0.8, seed=5),
        greedy("x = [", max_tokens=25),
    ]
    try:
        alone = [await collect(engine, request) for request in requests]
        together = await asyncio.gather(*(collect(engine, request) for request in requests))
    finally:
        await engine.aclose()
    assert [result.texts for result in together] == [result.texts for result in alone]
    assert len(together[2].texts) == 3


async def test_the_samples_of_a_request_read_the_prompt_once(tiny_model_dir):
    """n samples copy the first sample's prompt pass; each still decodes what it decodes reading the prompt itself
    (a decoder of its own, with the settings and seed the engine gives that sample)."""
    from engine.causal_model import TrunkCall
    from engine.native import _settings
    from engine.native_decode import SequenceDecoder

    engine = NativeEngine(tiny_model_dir, threads=1)
    prompt = "def parse(text):\n    " * 4
    prompt_reads = []
    run = engine.lm.run

    def recording(calls):
        prompt_reads.extend(len(c.token_ids) for c in calls if isinstance(c, TrunkCall) and len(c.token_ids) > 8)
        return run(calls)

    engine.lm.run = recording
    request = greedy(prompt, max_tokens=12, n=4, temperature=0.9, seed=11)
    together: list[list[int]] = [[] for _ in range(4)]
    try:
        async for chunk in engine.generate(request):
            together[chunk.index] += chunk.token_ids
        reads_together = len(prompt_reads)
        alone = []
        with torch.inference_mode():
            for index in range(4):
                settings = _settings(request, index, engine.fim_sentinel_ids, engine.draft_tokens)
                decoder = SequenceDecoder(engine.lm, engine.prompt_ids(request), settings, 256)
                out = decoder.prefill()
                while len(out) < 12:
                    out += decoder.step()
                alone.append(out)
    finally:
        await engine.aclose()
    assert reads_together == 1 and len(prompt_reads) == 5  # one read for the four samples, then one each alone
    assert all(ids and ids == own[: len(ids)] for ids, own in zip(together, alone))  # (a stop token may end one)
    assert len({tuple(ids) for ids in together}) > 1  # the samples do differ
