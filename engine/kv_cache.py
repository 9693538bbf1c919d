"""A preallocated key/value cache whose length can move back: rolling back rejected drafts is free.

gpt-fast's static cache idea, sized per request (prompt + max tokens) instead of per model, and returning only
the filled part so attention never runs over empty slots. It implements the two methods the MiMo model calls on
a cache, ``update`` and ``get_seq_length``; the engine passes explicit masks and positions, so nothing asks it
for mask sizes.
"""

from __future__ import annotations

import torch


class KVBuffer:
    def __init__(
        self,
        layers: int,
        kv_heads: int,
        head_dim: int,
        capacity: int,
        dtype: torch.dtype,
        device: torch.device | str,
    ):
        shape = (layers, 1, kv_heads, capacity, head_dim)
        self.keys = torch.empty(shape, dtype=dtype, device=device)
        self.values = torch.empty(shape, dtype=dtype, device=device)
        self.lengths = [0] * layers
        self.capacity = capacity

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        """Writes the new positions after the filled ones and returns all filled keys and values."""
        start = self.lengths[layer_idx]
        end = start + key_states.shape[-2]
        if end > self.capacity:
            raise RuntimeError(f"KV cache overflow: {end} positions for a cache of {self.capacity}")
        self.keys[layer_idx, :, :, start:end] = key_states
        self.values[layer_idx, :, :, start:end] = value_states
        self.lengths[layer_idx] = end
        return self.keys[layer_idx, :, :, :end], self.values[layer_idx, :, :, :end]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.lengths[layer_idx]

    def copy_prefix(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Copies of the keys and values of the first ``length`` positions (every layer)."""
        return self.keys[:, :, :, :length].clone(), self.values[:, :, :, :length].clone()

    def load_prefix(self, keys: torch.Tensor, values: torch.Tensor, length: int) -> None:
        """Makes the first ``length`` positions of ``keys``/``values`` (from ``copy_prefix``) the whole cache."""
        self.keys[:, :, :, :length] = keys[:, :, :, :length]
        self.values[:, :, :, :length] = values[:, :, :, :length]
        self.lengths = [length] * len(self.lengths)

    def truncate(self, length: int) -> None:
        """Forgets every position from ``length`` on (the next write overwrites them)."""
        self.lengths = [min(filled, length) for filled in self.lengths]
