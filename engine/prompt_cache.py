"""Reuse of the trunk's work on a prompt's shared beginning (prefix caching, as vLLM's and llama.cpp's).

Editor completions repeat themselves: while a person types, each request's prompt is the last one with a few
more characters at the end (our FIM prompts put the suffix first, so typing only extends the tail). A prefill
then needs to read only the tokens after the longest beginning it shares with a recent prompt: that part's keys,
values and hidden states are copied from the entry instead of computed.

Reused positions are bit-for-bit what a cold prefill computed; the new ones are computed in a separate chunk,
which can round differently in the last bits than one long prefill would. That is why the cache is opt-in
(`NativeEngine(prompt_cache=True)`, used by the language server) and tests comparing outputs run without it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

from engine.kv_cache import KVBuffer

MIN_REUSED_TOKENS = 16  # below this, copying costs about what computing does


@dataclass(frozen=True)
class CachedPrompt:
    token_ids: tuple[int, ...]
    keys: torch.Tensor  # (layers, 1, kv_heads, tokens, head_dim)
    values: torch.Tensor
    hidden: torch.Tensor  # (1, tokens, hidden): the trunk's pre-norm states, which the MTP layer reads


@dataclass(frozen=True)
class Reuse:
    entry: CachedPrompt
    length: int  # how many leading prompt tokens the entry supplies


class PromptCache:
    """The last few prompts' trunk states, least recently used dropped first, within a token budget."""

    def __init__(self, max_tokens: int = 8192):
        self.max_tokens = max_tokens
        self._entries: OrderedDict[tuple[int, ...], CachedPrompt] = OrderedDict()
        self.hits = 0
        self.reused_tokens = 0

    def find(self, prompt_ids: list[int]) -> Reuse | None:
        """The entry sharing the longest beginning with ``prompt_ids``, leaving at least one token to read."""
        best: Reuse | None = None
        for entry in self._entries.values():
            length = min(_common_length(entry.token_ids, prompt_ids), len(prompt_ids) - 1)
            if length >= MIN_REUSED_TOKENS and (best is None or length > best.length):
                best = Reuse(entry, length)
        if best is not None:
            self._entries.move_to_end(best.entry.token_ids)
            self.hits += 1
            self.reused_tokens += best.length
        return best

    def store(self, prompt_ids: list[int], cache: KVBuffer, hidden: torch.Tensor) -> None:
        """Keeps a copy of the prompt's keys, values and hidden states (``cache`` holds exactly the prompt)."""
        key = tuple(prompt_ids)
        if len(key) > self.max_tokens:
            return
        keys, values = cache.copy_prefix(len(key))
        self._entries[key] = CachedPrompt(key, keys, values, hidden[:, : len(key)].clone())
        self._entries.move_to_end(key)
        while sum(len(k) for k in self._entries) > self.max_tokens:
            self._entries.popitem(last=False)


def restore(reuse: Reuse, cache: KVBuffer) -> torch.Tensor:
    """Writes the reused positions into an empty ``cache``; returns their hidden states (1, length, hidden)."""
    cache.load_prefix(reuse.entry.keys, reuse.entry.values, reuse.length)
    return reuse.entry.hidden[:, : reuse.length]


def _common_length(a: tuple[int, ...], b: list[int]) -> int:
    limit = min(len(a), len(b))
    for index in range(limit):
        if a[index] != b[index]:
            return index
    return limit
