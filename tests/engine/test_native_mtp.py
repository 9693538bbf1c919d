"""MTP self-speculative decoding: greedy output is token-for-token that of plain decoding, drafts accepted or not.

A random MTP layer almost never agrees with the trunk, so only the rejection path would run. The trained model
below learns a repeating token sequence (trunk and MTP layer both), so most drafts are accepted and both paths
are exercised on the same prompts.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
import torch

from engine.api import GenerationRequest, SamplingParams, collect
from engine.native import NativeEngine

CYCLE_LENGTH = 40


def repeating_stream(vocab_low: int = 9, vocab_high: int = 500, seed: int = 0) -> torch.Tensor:
    """A 40-token cycle over 12 token ids: predicting the next token needs context, not just the last token."""
    generator = torch.Generator().manual_seed(seed)
    alphabet = torch.randint(vocab_low, vocab_high, (12,), generator=generator)
    cycle = alphabet[torch.randint(0, 12, (CYCLE_LENGTH,), generator=generator)]
    return cycle.repeat(12)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny checkpoint after 100 AdamW steps on the repeating stream, MTP loss included."""
    from transformers import AutoModelForCausalLM

    import engine.model  # noqa: F401

    out_dir = tmp_path_factory.mktemp("trained-mimo")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    stream = repeating_stream()
    for _ in range(100):
        starts = torch.randint(0, CYCLE_LENGTH, (8,))
        batch = torch.stack([stream[s : s + 64] for s in starts])
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, out_dir / name)
    return out_dir


def prompts(engine: NativeEngine) -> list[str]:
    """Windows of the learned cycle (drafts mostly accepted) and ordinary text (drafts mostly rejected)."""
    stream = repeating_stream()
    windows = [engine.tokenizer.decode(stream[s : s + 6 + s % 9]) for s in range(0, 36, 3)]
    return windows + ["def main():\n", "import sys\n", "for i in range(", "class Tree:\n    def"]


async def decode(engine: NativeEngine, prompt: str, use_mtp: bool, **sampling):
    request = GenerationRequest(prompt=prompt, sampling=SamplingParams(max_tokens=48, **sampling), use_mtp=use_mtp)
    chunks = [chunk async for chunk in engine.generate(request)]
    return [t for c in chunks for t in c.token_ids], chunks[-1].timings


@pytest.mark.slow
@pytest.mark.parametrize("draft_tokens", [1, 3])
async def test_greedy_mtp_output_is_identical_to_plain_decoding(trained_model_dir, draft_tokens):
    engine = NativeEngine(trained_model_dir, threads=1, draft_tokens=draft_tokens)
    proposed = accepted = steps = 0
    per_position = [0] * draft_tokens
    try:
        for prompt in prompts(engine):
            plain, plain_timings = await decode(engine, prompt, use_mtp=False)
            mtp, timings = await decode(engine, prompt, use_mtp=True)
            assert mtp == plain, prompt
            assert plain_timings.mtp_drafts_proposed == 0
            proposed += timings.mtp_drafts_proposed
            accepted += timings.mtp_drafts_accepted
            steps += timings.mtp_steps
            per_position = [a + b for a, b in zip(per_position, timings.mtp_accepted_per_position)]
    finally:
        await engine.aclose()
    # Both verification outcomes ran many times, at every draft position.
    assert proposed == steps * draft_tokens
    assert per_position[-1] > 20  # steps whose every draft was accepted (and a bonus token taken)
    assert steps - per_position[0] > 10  # steps whose first draft was rejected
    # Position i + 1 is accepted only after position i: counts never rise, and they add up to the total.
    assert sum(per_position) == accepted
    assert all(later <= earlier for earlier, later in zip(per_position, per_position[1:]))


@pytest.mark.parametrize("draft_vocab", [None, 300])
async def test_random_mtp_layer_still_gives_plain_greedy_output(tiny_model_dir, draft_vocab):
    engine = NativeEngine(tiny_model_dir, threads=1, draft_vocab=draft_vocab)
    try:
        for prompt in ["def main():\n", "x = {", "return self."]:
            plain, _ = await decode(engine, prompt, use_mtp=False)
            mtp, timings = await decode(engine, prompt, use_mtp=True)
            assert mtp == plain
            assert timings.mtp_drafts_proposed > 0
        sampled, _ = await decode(engine, "x = {", use_mtp=True, temperature=1.0, seed=0)
        assert len(sampled) > 0
    finally:
        await engine.aclose()


@pytest.mark.slow
async def test_mtp_sampling_is_seeded_and_follows_the_learned_sequence(trained_model_dir):
    engine = NativeEngine(trained_model_dir, threads=1)
    try:
        prompt = prompts(engine)[0]
        first, timings = await decode(engine, prompt, use_mtp=True, temperature=0.7, seed=3)
        again, _ = await decode(engine, prompt, use_mtp=True, temperature=0.7, seed=3)
        prompt_ids = engine.tokenizer.encode(prompt)
        with torch.inference_mode():
            logits = engine.lm.model(torch.tensor([prompt_ids + first])).logits[0, len(prompt_ids) - 1 : -1]
    finally:
        await engine.aclose()
    assert first == again
    assert timings.mtp_drafts_accepted > 0
    # The trained model is nearly deterministic here, so each sampled token is mostly the model's first choice
    # after the tokens sampled before it (a sample that once leaves the greedy path need not come back to it).
    assert (logits.argmax(-1) == torch.tensor(first)).float().mean() > 0.75


def test_a_plain_qwen2_checkpoint_decodes_without_mtp(plain_qwen2_dir):
    engine = NativeEngine(plain_qwen2_dir, threads=1)
    try:
        assert engine.info().mtp_layers == 0
        ids, timings = asyncio.run(decode(engine, "def f():\n", use_mtp=True))
        assert timings.mtp_drafts_proposed == 0
        expected = prompt = engine.tokenizer.encode("def f():\n")
        with torch.inference_mode():
            while len(expected) < len(prompt) + len(ids):  # uncached greedy decoding as the reference
                logits = engine.lm.model(torch.tensor([expected])).logits[0, -1]
                banned = torch.tensor(engine.fim_sentinel_ids, dtype=torch.long)  # the engine never picks them
                expected = expected + [int(logits.index_fill(-1, banned, float("-inf")).argmax())]
        assert ids == expected[len(prompt) :]
    finally:
        asyncio.run(engine.aclose())


def test_the_lean_mtp_forward_matches_the_model_definition(tiny_model_dir):
    """The engine's cached MTP pass, fed in two chunks, gives the logits of the model's own ``mtp_forward``."""
    from transformers import AutoModelForCausalLM

    from engine.causal_model import CausalModel

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    lm = CausalModel(model)
    ids = list(range(10, 30))
    with torch.inference_mode():
        hidden = model(input_ids=torch.tensor([ids])).pre_norm_hidden_state
        reference = model.mtp_logits(0, model.model.mtp_forward(0, hidden[:, :19], torch.tensor([ids[1:20]])))
        cache = lm.new_cache(64, layers=1)
        lm.restrict_drafts(300)  # drafts choose among token ids 0..299
        first, _ = lm.mtp(hidden[:, :10], ids[1:11], cache)  # pairs (h_t, x_{t+1}) for t = 0..9
        second, _ = lm.mtp(hidden[:, 10:19], ids[11:20], cache)  # t = 10..18, reading the cached 0..9
    assert first.shape == (1, 300)
    assert torch.allclose(first[0], reference[0, 9, :300], atol=1e-5)
    assert torch.allclose(second[0], reference[0, 18, :300], atol=1e-5)


def test_banned_ids_are_never_emitted_and_mtp_still_matches_plain(trained_model_dir):
    """FIM requests ban the FIM sentinels; the ban applies to target and draft alike, so MTP stays lossless."""
    from engine.native_decode import DecodeSettings, SequenceDecoder

    engine = NativeEngine(trained_model_dir, threads=1)
    prompt = engine.tokenizer(prompts(engine)[0], add_special_tokens=False)["input_ids"]

    def greedy(use_mtp: bool, banned: tuple[int, ...] = ()) -> list[int]:
        decoder = SequenceDecoder(engine.lm, prompt, DecodeSettings(use_mtp=use_mtp, banned_ids=banned), 128)
        with torch.inference_mode():
            out = decoder.prefill()
            while len(out) < 32:
                out += decoder.step()
        return out[:32]

    free = greedy(use_mtp=False)
    banned = tuple(sorted(set(free[:3])))  # the tokens the model wants most here
    plain, mtp = greedy(False, banned), greedy(True, banned)
    assert plain == mtp
    assert not set(plain) & set(banned) and plain != free


async def test_every_request_bans_the_templates_fim_sentinels(tiny_model_dir):
    from engine.api import FimParts, Message
    from engine.native import _settings

    engine = NativeEngine(tiny_model_dir, threads=1)
    vocab = engine.tokenizer.get_vocab()
    assert engine.fim_sentinel_ids == tuple(vocab[t] for t in ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"))
    requests = [
        GenerationRequest(fim=FimParts(prefix="def f(", suffix=")\n"), sampling=SamplingParams(max_tokens=4)),
        GenerationRequest(prompt="def f(", sampling=SamplingParams(max_tokens=4)),
        GenerationRequest(messages=[Message(role="user", content="hi")], sampling=SamplingParams(max_tokens=4)),
    ]
    for request in requests:
        assert _settings(request, 0, engine.fim_sentinel_ids).banned_ids == engine.fim_sentinel_ids
    await engine.aclose()


async def test_nano_writes_code_after_a_line_where_its_first_choice_is_a_fim_sentinel():
    """mimo-nano's phase 2 trained on FIM pieces cut at line ends, so after "def fibonacci(n):\n" its first
    choice is <|fim_middle|>, a control token that would stop the completion with nothing written. (A property
    of the shipped weights: a retrained nano may need another prompt here.)"""
    from engine.registry import NANO_DIR

    engine = NativeEngine(NANO_DIR, threads=1)
    prompt = "def fibonacci(n):\n"
    with torch.inference_mode():
        logits = engine.lm.model(torch.tensor([engine.tokenizer.encode(prompt)])).logits[0, -1]
    assert int(logits.argmax()) in engine.fim_sentinel_ids
    result = await collect(engine, GenerationRequest(prompt=prompt, sampling=SamplingParams(max_tokens=16)))
    assert result.texts[0].strip() and result.finish_reasons == ["length"]
    await engine.aclose()


async def test_prompt_cache_reads_only_new_tokens_and_keeps_the_output(trained_model_dir):
    """A prompt that extends a recent one reuses its trunk states; greedy output (plain and MTP) is unchanged."""
    cold = NativeEngine(trained_model_dir, threads=1)
    warm = NativeEngine(trained_model_dir, threads=1, prompt_cache=True)
    read: list[int] = []
    from engine.causal_model import TrunkCall

    run = warm.lm.run

    def recording(calls):
        read.extend(len(call.token_ids) for call in calls if isinstance(call, TrunkCall))
        return run(calls)

    warm.lm.run = recording
    stream = repeating_stream()
    first, longer = (warm.tokenizer.decode(stream[:n]) for n in (30, 34))
    try:
        await decode(warm, first, use_mtp=True)
        read.clear()
        for use_mtp in (True, False):
            assert (await decode(warm, longer, use_mtp))[0] == (await decode(cold, longer, use_mtp))[0]
        assert read[0] < 10  # the prefill read only the tokens after the shared beginning
        assert warm.prompt_cache.hits >= 2 and warm.prompt_cache.reused_tokens >= 2 * 25
    finally:
        await cold.aclose()
        await warm.aclose()


def test_batched_steps_give_each_sequence_its_own_output(trained_model_dir):
    """Sequences at different points (a prefill, plain steps, MTP steps with k = 1 and 3) batched together
    decode exactly what each decodes alone, and the batch really shares model calls."""
    from engine.causal_model import drive, run_together
    from engine.native_decode import DecodeSettings, SequenceDecoder

    engine = NativeEngine(trained_model_dir, threads=1)
    texts = prompts(engine)
    settings = [
        DecodeSettings(use_mtp=False),
        DecodeSettings(draft_tokens=1),
        DecodeSettings(draft_tokens=3),
        DecodeSettings(draft_tokens=3),
        DecodeSettings(use_mtp=False),
    ]

    def decoders():
        return [
            SequenceDecoder(engine.lm, engine.tokenizer.encode(text), setting, 96)
            for text, setting in zip([texts[0], texts[5], texts[9], texts[-1], texts[-2]], settings)
        ]

    alone = []
    with torch.inference_mode():
        for decoder in decoders():
            out = drive(engine.lm, decoder.advance())
            while len(out) < 40:
                out += drive(engine.lm, decoder.advance())
            alone.append(out[:40])
        batch_sizes = []
        run = engine.lm.run
        engine.lm.run = lambda calls: (batch_sizes.append(len(calls)), run(calls))[1]
        together = [[] for _ in settings]
        batch = decoders()
        late = batch.pop()  # joins after a few rounds, as a new request does
        rounds = 0
        while any(len(out) < 40 for out in together):
            if rounds == 3:
                batch.append(late)
            active = [i for i, out in enumerate(together[: len(batch)]) if len(out) < 40]
            outcomes = run_together(engine.lm, [batch[i].advance() for i in active])
            for i, outcome in zip(active, outcomes):
                together[i] += outcome
            rounds += 1
    assert [out[:40] for out in together] == alone
    assert max(batch_sizes) >= 4  # model calls of several sequences ran as one


def test_run_together_orders_calls_and_keeps_errors_to_their_steps():
    """The batching driver with a recording stand-in for the model (the driver is what's under test): MTP
    calls go first, trunk calls wait for them and batch together, and an error stays with its own steps."""
    from engine.causal_model import MtpCall, TrunkCall, run_together

    batches = []

    class RecordingModel:
        def run(self, calls):
            batches.append([type(call).__name__ for call in calls])
            if any(isinstance(call, TrunkCall) and call.token_ids == [666] for call in calls):
                raise RuntimeError("out of memory")
            return [(len(batches), None)] * len(calls)

    def plain():
        result, _ = yield TrunkCall([1], cache=None)
        return [result]

    def mtp():
        first, _ = yield MtpCall(torch.zeros(1, 1, 4), [1], cache=None)
        second, _ = yield MtpCall(torch.zeros(1, 1, 4), [2], cache=None)
        verified, _ = yield TrunkCall([1, 2, 3], cache=None)
        return [first, second, verified]

    def broken_logic():
        yield TrunkCall([2], cache=None)
        raise ValueError("bad sampling value")

    outcomes = run_together(RecordingModel(), [plain(), mtp(), broken_logic()])
    assert batches == [["MtpCall"], ["MtpCall"], ["TrunkCall", "TrunkCall", "TrunkCall"]]
    assert outcomes[0] == [3] and outcomes[1] == [1, 2, 3]
    assert isinstance(outcomes[2], ValueError)

    batches.clear()
    failing = run_together(RecordingModel(), [mtp(), (step for step in [TrunkCall([666], cache=None)])])
    assert batches[-1] == ["TrunkCall", "TrunkCall"]  # the MTP step's verification shared the failed batch
    assert all(isinstance(outcome, RuntimeError) for outcome in failing)


SHAPINGS = [
    {"frequency_penalty": 0.8},
    {"presence_penalty": 1.5, "frequency_penalty": -0.3},
    {"logit_bias": "first greedy tokens", "presence_penalty": 0.5},
]


@pytest.mark.slow
@pytest.mark.parametrize("draft_tokens", [1, 3])
async def test_penalties_and_biases_keep_greedy_mtp_output_identical_to_plain(trained_model_dir, draft_tokens):
    """Target and drafts see the same biases and penalties, each verification row counting the drafts before
    it: greedy MTP output equals plain greedy output with them on, and they do change the output."""
    engine = NativeEngine(trained_model_dir, threads=1, draft_tokens=draft_tokens)
    changed = accepted = rejected = 0
    try:
        for prompt in prompts(engine)[:4] + ["def main():\n"]:
            free, _ = await decode(engine, prompt, use_mtp=False)
            for shaping in SHAPINGS:
                if shaping.get("logit_bias"):
                    shaping = {**shaping, "logit_bias": {token: -100.0 for token in free[:2]}}
                plain, _ = await decode(engine, prompt, use_mtp=False, **shaping)
                mtp, timings = await decode(engine, prompt, use_mtp=True, **shaping)
                assert mtp == plain, (prompt, shaping)
                changed += plain != free
                accepted += timings.mtp_drafts_accepted
                rejected += timings.mtp_steps - timings.mtp_accepted_per_position[0]
    finally:
        await engine.aclose()
    assert changed >= 10  # of 15 cases: the penalties and biases are applied
    assert accepted > 20 and rejected > 10  # both verification outcomes ran with shaped targets


@pytest.mark.slow
async def test_mtp_sampling_never_emits_a_token_biased_away(trained_model_dir):
    """Speculative sampling accepts a draft by the target's probability: a -100 bias must reach the target (and
    the draft), or drafts of the learned cycle would carry the token through. Without the bias it is common."""
    engine = NativeEngine(trained_model_dir, threads=1)
    try:
        prompt = prompts(engine)[0]
        free, _ = await decode(engine, prompt, use_mtp=True, temperature=0.7, seed=1)
        common = max(set(free), key=free.count)
        for seed in range(4):
            biased, timings = await decode(
                engine, prompt, use_mtp=True, temperature=0.7, seed=seed, logit_bias={common: -100.0}
            )
            assert common not in biased and timings.mtp_drafts_proposed > 0
    finally:
        await engine.aclose()
    assert free.count(common) >= 5


def test_steps_without_drafts_keep_the_output_and_the_mtp_layers_state(trained_model_dir):
    """A decoder told to skip drafting for a while (a large batch) decodes what plain decoding does, and once it
    drafts again its MTP cache holds what an always-drafting decoder's holds: the skipped positions were read."""
    from engine.causal_model import drive
    from engine.native_decode import DecodeSettings, SequenceDecoder

    engine = NativeEngine(trained_model_dir, threads=1)
    prompt = engine.tokenizer(prompts(engine)[0], add_special_tokens=False)["input_ids"]

    def greedy(use_mtp: bool, draft_from: int) -> tuple[list[int], SequenceDecoder]:
        decoder = SequenceDecoder(engine.lm, prompt, DecodeSettings(use_mtp=use_mtp), 128)
        with torch.inference_mode():
            out = drive(engine.lm, decoder.advance())
            steps = 0
            while len(out) < 48:
                out += drive(engine.lm, decoder.advance(draft=steps >= draft_from))
                steps += 1
        return out[:48], decoder

    plain, _ = greedy(use_mtp=False, draft_from=0)
    always, drafting = greedy(use_mtp=True, draft_from=0)
    late, resumed = greedy(use_mtp=True, draft_from=12)  # 12 plain steps, then drafts
    assert late == always == plain
    assert resumed.drafts_accepted > 0
    # The MTP layer's keys and values, position by position, over what both caches hold.
    shared = min(drafting.mtp_cache.get_seq_length(), resumed.mtp_cache.get_seq_length())
    assert shared > len(prompt) + 12
    for ours, theirs in zip(resumed.mtp_cache.copy_prefix(shared), drafting.mtp_cache.copy_prefix(shared)):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
