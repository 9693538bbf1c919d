"""Sampling rules both backends share: the seed range and each sample's own seed, the greedy threshold, the
checks of a request's sampling values, and what a request does to the model's logits before temperature and
top-p (token biases, presence and frequency penalties, banned ids).

A step's logit processors, in order: the model's logits; ``LogitShaper`` (bias, penalties, bans); the request's
``response_format`` grammar mask (``engine.grammar``); temperature and top-p (``speculative.logits_to_probs``);
argmax or sampling.

``LogitShaper`` is written for speculative decoding: the rows of one verification step each see the tokens
before them (the drafts they follow), so MTP verifies against exactly the distribution plain decoding would
sample from, and its output stays that of plain decoding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from engine.api import BadRequest, SamplingParams

# Seeds are 64-bit integers, signed or unsigned (so -1 and 2**64 - 1 name the same seed).
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1
# Temperatures below this decode greedily. softmax(logits / T) for such T puts all its mass on the top token
# unless two logits lie within about 1e-4 of each other, and dividing by T < ~1e-37 overflows float32 into
# inf/nan. vLLM draws the same line (its _SAMPLING_EPS), and computes temperatures below 0.01 as 0.01.
GREEDY_BELOW = 1e-5
PENALTY_LIMIT = 2.0  # presence and frequency penalties lie in [-2, 2], as in OpenAI's API
BIAS_LIMIT = 100.0  # logit biases lie in [-100, 100], as in OpenAI's API


def is_greedy(temperature: float) -> bool:
    return temperature < GREEDY_BELOW


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a request seeded with ``seed``: 63 bits from numpy's ``SeedSequence``.

    ``seed + index`` would make sample j of seed s the same stream as sample j - 1 of seed s + 1, so requests
    seeded ``base + i`` (RL rollouts, say) would share samples. SeedSequence hashes the seed and the index
    into well-mixed, independent states. 63 bits leave room for vLLM, which seeds a request's n samples with
    ``seed + index`` itself.
    """
    import numpy as np

    state = np.random.SeedSequence(seed % 2**64, spawn_key=(index,)).generate_state(1, np.uint64)[0]
    return int(state) >> 1


def check_sampling(sampling: SamplingParams, vocab_size: int) -> None:
    """Refuses sampling values no backend can honour, naming the field and what is allowed (a ``BadRequest``)."""
    if sampling.n < 1 or sampling.max_tokens < 1:
        raise BadRequest("n and max_tokens must be at least 1")
    if not (math.isfinite(sampling.temperature) and sampling.temperature >= 0):
        raise BadRequest(f"temperature must be a finite number ≥ 0, got {sampling.temperature}")
    if not (math.isfinite(sampling.top_p) and 0 < sampling.top_p <= 1):
        raise BadRequest(f"top_p must be in (0, 1], got {sampling.top_p}")
    if sampling.seed is not None and not SEED_MIN <= sampling.seed <= SEED_MAX:
        raise BadRequest(f"seed must be an integer from -2**63 to 2**64 - 1, got {sampling.seed}")
    for name in ("presence_penalty", "frequency_penalty"):
        value = getattr(sampling, name)
        if not (math.isfinite(value) and -PENALTY_LIMIT <= value <= PENALTY_LIMIT):
            raise BadRequest(f"{name} must be a number from -2 to 2, got {value}")
    for token, bias in (sampling.logit_bias or {}).items():
        if not 0 <= token < vocab_size:
            raise BadRequest(f"logit_bias: token id {token} is not in the vocabulary (0 to {vocab_size - 1})")
        if not (math.isfinite(bias) and -BIAS_LIMIT <= bias <= BIAS_LIMIT):
            raise BadRequest(f"logit_bias: the bias of token {token} must be from -100 to 100, got {bias}")


class LogitShaper:
    """One sequence's changes to the model's logits: biases, penalties over the tokens it generated, bans.

    ``shape(logits, following)``: ``logits`` is (rows, width) or (width,), width up to the vocabulary (MTP
    drafts see its first ids only); ``following`` are tokens after the recorded ones, of which row r sees the
    first ``len(following) - rows + 1 + r`` (a verification step's rows follow the drafts before them; a
    draft's single row follows every draft before it). ``record`` adds a step's accepted tokens.
    """

    def __init__(
        self,
        banned_ids: Sequence[int] = (),
        logit_bias: Sequence[tuple[int, float]] = (),
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        vocab_size: int = 0,
        device: torch.device | str = "cpu",
    ):
        self.banned = torch.tensor(tuple(banned_ids), dtype=torch.long, device=device)
        self.presence, self.frequency = presence_penalty, frequency_penalty
        self.penalised = bool(presence_penalty or frequency_penalty)
        self.bias: torch.Tensor | None = None  # (vocab,)
        if logit_bias:
            ids = torch.tensor([token for token, _ in logit_bias], dtype=torch.long, device=device)
            values = torch.tensor([value for _, value in logit_bias], dtype=torch.float32, device=device)
            self.bias = torch.zeros(vocab_size, device=device).index_put_((ids,), values)
        # How often each token was generated (for the penalties).
        self.counts = torch.zeros(vocab_size, device=device) if self.penalised else None
        # Beyond the bans, the default request changes nothing: its logits take the fast path untouched.
        self.active = self.bias is not None or self.penalised

    def shape(self, logits: torch.Tensor, following: Sequence[int] = ()) -> torch.Tensor:
        if self.active:
            logits = logits.float()
            width = logits.shape[-1]
            if self.bias is not None:
                logits = logits + self.bias[:width]
            if self.penalised:
                counts = self._counts_seen(logits, following)
                logits = logits - self.frequency * counts - self.presence * (counts > 0).float()
        if not self.banned.numel():
            return logits
        banned = self.banned[self.banned < logits.shape[-1]]
        return logits.index_fill(-1, banned, float("-inf"))

    def record(self, tokens: Sequence[int]) -> None:
        if self.penalised and tokens:
            ids = torch.tensor(tokens, dtype=torch.long, device=self.counts.device)
            self.counts.index_put_((ids,), torch.ones(len(ids), device=self.counts.device), accumulate=True)

    def _counts_seen(self, logits: torch.Tensor, following: Sequence[int]) -> torch.Tensor:
        """The counts each row of ``logits`` sees: (width,) or (rows, width)."""
        width = logits.shape[-1]
        counts = self.counts[:width]
        rows = logits.shape[0] if logits.dim() == 2 else 1
        if not following:
            return counts
        seen = counts.expand(rows, width).clone()
        first_row_sees = len(following) - rows + 1
        for position, token in enumerate(following):
            if token < width:
                seen[max(position - first_row_sees + 1, 0) :, token] += 1
        return seen if logits.dim() == 2 else seen[0]
