"""PromptCache bookkeeping: which entry a prompt reuses, and what is evicted."""

from __future__ import annotations

import torch

from engine.kv_cache import KVBuffer
from engine.prompt_cache import MIN_REUSED_TOKENS, PromptCache, restore


def filled_cache(tokens: int, value: float) -> tuple[KVBuffer, torch.Tensor]:
    cache = KVBuffer(layers=2, kv_heads=1, head_dim=4, capacity=128, dtype=torch.float32, device="cpu")
    states = torch.full((1, 1, tokens, 4), value)
    for layer in range(2):
        cache.update(states, states, layer)
    return cache, torch.full((1, tokens, 8), value)


def test_the_longest_shared_beginning_wins_and_one_token_is_always_left_to_read():
    cache = PromptCache()
    short, long = list(range(40)), list(range(60))
    cache.store(short, *filled_cache(40, 1.0))
    cache.store(long, *filled_cache(60, 2.0))
    reuse = cache.find(list(range(50)) + [999])
    assert reuse.entry.token_ids == tuple(long) and reuse.length == 50
    assert cache.find(long).length == 59  # the same prompt again: its last token is read for its logits
    assert cache.find([999] + list(range(40))) is None  # nothing shared at the start
    assert cache.find(list(range(MIN_REUSED_TOKENS - 1)) + [999]) is None  # too little to be worth it


def test_restore_writes_the_reused_positions_and_returns_their_hidden_states():
    cache = PromptCache()
    cache.store(list(range(30)), *filled_cache(30, 3.0))
    reuse = cache.find(list(range(20)) + [7, 7])
    target = KVBuffer(layers=2, kv_heads=1, head_dim=4, capacity=64, dtype=torch.float32, device="cpu")
    hidden = restore(reuse, target)
    assert target.get_seq_length(0) == target.get_seq_length(1) == 20
    assert torch.all(target.keys[:, :, :, :20] == 3.0) and hidden.shape == (1, 20, 8)


def test_least_recently_used_prompts_leave_first_within_the_token_budget():
    cache = PromptCache(max_tokens=100)
    for start in (1000, 2000, 3000):
        cache.store(list(range(start, start + 40)), *filled_cache(40, 0.0))
    assert cache.find(list(range(1000, 1040))) is None  # evicted: 120 tokens exceeded the budget
    assert cache.find(list(range(2000, 1040 + 1000))) is not None
