"""Pre-transposed linear weights for CPU decoding.

``F.linear(x, W)`` multiplies by the transpose of the stored (out, in) weight; for the one- and two-row inputs
of decoding, the CPU BLAS path behind it was several times slower here than ``x @ Wᵀ`` with ``Wᵀ`` stored
contiguously, and it scaled with the row count, so verifying a draft (two rows) cost two plain steps. Storing
``Wᵀ`` once at load makes a two-row verify cost about one plain step, which is what MTP decoding needs.
The model definition is untouched: the engine swaps modules on the instance it loaded (gpt-fast's "adapt the
checkpoint where it is consumed").
"""

from __future__ import annotations

import torch
from torch import nn


class PretransposedLinear(nn.Module):
    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.weight_t = nn.Parameter(linear.weight.detach().t().contiguous(), requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.weight_t
        return y if self.bias is None else y + self.bias


def pretranspose_linears(module: nn.Module) -> int:
    """Replaces every ``nn.Linear`` under ``module`` in place; returns how many were replaced."""
    replaced = 0
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, PretransposedLinear(child))
            replaced += 1
        else:
            replaced += pretranspose_linears(child)
    return replaced
