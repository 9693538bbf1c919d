"""The sampling rules both backends share (engine.sampling), the numerics of logits_to_probs, and stop-string
matching (engine.text_stream.StopMatcher), held to plain reference definitions."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.api import BadRequest, SamplingParams
from engine.sampling import SEED_MAX, SEED_MIN, LogitShaper, check_sampling, is_greedy, sample_seed
from engine.speculative import logits_to_probs, sample
from engine.text_stream import StopMatcher


def test_each_sample_of_a_seed_has_its_own_stream_and_it_is_repeatable():
    # The old rule (seed + index) made sample j of seed s the stream of sample j - 1 of seed s + 1.
    seeds = {(s, j): sample_seed(s, j) for s in range(50) for j in range(16)}
    assert len(set(seeds.values())) == len(seeds)
    assert all(seeds[(s, j)] != seeds[(s + 1, j - 1)] for s in range(49) for j in range(1, 16))
    assert sample_seed(7, 3) == sample_seed(7, 3)
    assert all(0 <= seed < 2**63 for seed in seeds.values())  # room for vLLM's seed + index
    # The whole accepted range works, and the two spellings of a 64-bit pattern name one seed.
    assert sample_seed(-1, 0) == sample_seed(SEED_MAX, 0)
    torch.Generator().manual_seed(sample_seed(SEED_MIN, 15))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 2**64}, "seed must be an integer from -2\\*\\*63"),
        ({"seed": -(2**63) - 1}, "seed"),
        ({"temperature": float("nan")}, "temperature must be a finite number"),
        ({"top_p": 0.0}, "top_p"),
        ({"presence_penalty": 2.5}, "presence_penalty must be a number from -2 to 2"),
        ({"frequency_penalty": float("inf")}, "frequency_penalty"),
        ({"logit_bias": {512: 1.0}}, "token id 512 is not in the vocabulary"),
        ({"logit_bias": {3: -101.0}}, "from -100 to 100"),
        ({"n": 0}, "at least 1"),
    ],
)
def test_values_no_backend_can_honour_are_refused_naming_the_field(change, message):
    with pytest.raises(BadRequest, match=message):
        check_sampling(SamplingParams(**change), vocab_size=512)


def test_the_range_edges_are_accepted():
    for seed in (SEED_MIN, SEED_MAX, 0):
        check_sampling(SamplingParams(seed=seed, logit_bias={0: -100.0, 511: 100.0}, presence_penalty=-2.0), 512)


@pytest.mark.parametrize("temperature", [1e-38, 5e-324, 1e-6])
def test_tiny_temperatures_decode_greedily(temperature):
    assert is_greedy(temperature) and is_greedy(0.0) and not is_greedy(1e-5)


@pytest.mark.parametrize("top_p", [1e-300, 5e-324, 1e-45])
def test_a_top_p_below_float32s_range_keeps_the_top_token(top_p):
    logits = torch.tensor([[1.0, 3.0, 2.0], [0.0, 0.0, 5.0]])
    probs = logits_to_probs(logits, temperature=1.0, top_p=top_p)
    assert torch.equal(probs, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    assert sample(probs).tolist() == [1, 2]


def test_the_smallest_sampling_temperature_stays_finite():
    logits = torch.tensor([-1e4, 0.0, 30.0, 29.9999, float("-inf")])
    probs = logits_to_probs(logits, temperature=1e-5, top_p=1.0)
    assert torch.isfinite(probs).all() and probs.sum().item() == pytest.approx(1.0)


def reference_shaped(logits, generated, bias, presence, frequency, banned):
    """OpenAI's definition, one row: logit + bias - frequency * count - presence * (count > 0); banned: -inf."""
    out = logits.clone().double()
    for token, value in bias:
        out[token] += value
    for token in set(generated):
        count = generated.count(token)
        out[token] -= frequency * count + presence * (count > 0)
    out[list(banned)] = float("-inf")
    return out.float()


def test_each_verification_row_sees_the_tokens_before_it():
    """Row r of a verification step follows the drafts before it: it must equal the single-row shaping after
    those drafts were generated, which is what plain decoding samples from."""
    vocab, generator = 40, torch.Generator().manual_seed(0)
    bias, banned = ((3, 2.5), (7, -100.0)), (5,)
    shaper = LogitShaper(banned, bias, presence_penalty=0.7, frequency_penalty=0.4, vocab_size=vocab)
    history = [3, 3, 9, 12]
    shaper.record(history[:2])
    shaper.record(history[2:])
    drafts = [9, 3, 20]
    rows = torch.randn(len(drafts) + 1, vocab, generator=generator)
    shaped = shaper.shape(rows, drafts)
    for r in range(len(drafts) + 1):
        expected = reference_shaped(rows[r], history + drafts[:r], bias, 0.7, 0.4, banned)
        assert torch.allclose(shaped[r], expected), r
    # A draft's single row (and the draft head's narrower vocabulary) sees every draft before it.
    narrow = shaper.shape(rows[:1, :24], drafts[:2])
    assert torch.allclose(narrow[0], reference_shaped(rows[0], history + drafts[:2], bias, 0.7, 0.4, banned)[:24])


def test_a_request_without_biases_or_penalties_takes_the_logits_as_they_are():
    logits = torch.randn(2, 10)
    shaper = LogitShaper(banned_ids=(), vocab_size=10)
    assert not shaper.active and shaper.shape(logits, [1]) is logits
    banned = LogitShaper(banned_ids=(4,), vocab_size=10).shape(logits)
    assert torch.isneginf(banned[:, 4]).all() and torch.equal(banned[:, :4], logits[:, :4])


def first_stop(text: str, stops: list[str]) -> int | None:
    """Reference: scanning the text, the first position where some stop string ends; the earliest start among
    those ending there."""
    for end in range(1, len(text) + 1):
        starts = [end - len(s) for s in stops if s and text[:end].endswith(s)]
        if starts:
            return min(starts)
    return None


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.text(alphabet="abc\n", max_size=6), max_size=12),
    stops=st.lists(st.text(alphabet="abc\n", max_size=5), max_size=4),
)
def test_stop_matching_piece_by_piece_finds_what_a_whole_text_search_finds(pieces, stops):
    matcher = StopMatcher(stops)
    found, text = None, ""
    for piece in pieces:
        found = matcher.feed(piece)
        text += piece
        if found is not None:
            break
        # Held back: exactly the longest tail of the text that begins some stop string.
        longest = max((k for s in stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        assert matcher.held_back() == longest
    assert found == first_stop(text, stops)


def test_a_long_stop_string_is_held_back_and_found_after_a_long_partial_match():
    """A stop string of 1,000 'a's then 'b' against a long run of 'a's (where the old held-back loop compared
    every tail): 1,000 characters stay held back, and the 'b' completes the match where it began."""
    matcher = StopMatcher(["a" * 1000 + "b"])
    steps = 0
    for _ in range(200):
        assert matcher.feed("a" * 50) is None
        steps += 50
    assert matcher.held_back() == 1000
    assert matcher.feed("b") == steps - 1000
