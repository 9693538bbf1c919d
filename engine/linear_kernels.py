"""Matrix-vector kernels for decoding: the linear layers of one step, chosen once at load for the device.

Decoding multiplies one or a few rows by every weight matrix, so a step costs what reading the weights costs.
Two findings on this project's CPUs (AMD EPYC, AVX-512; docs/benchmarks.md) decide the kernels:

- ``F.linear(x, W)`` reached MKL's sgemm with a transposed operand and was several times slower for one and two
  rows than ``x @ Wᵀ`` with ``Wᵀ`` stored contiguously (``TransposedLinear``).
- Even so, MKL's fp32 path multiplies a two-row block at twice the cost of one row, so verifying a draft cost
  two plain steps. fbgemm's fp16-weight kernel (fp16 weights widened in registers, fp32 accumulation and
  activations) streams each weight once for all rows: one row in 0.4–0.6 of MKL's time, and a second row
  about 30 % more for nano's LM head (``Fp16WeightLinear``). A checkpoint stored in bfloat16 loses nothing
  there but the few weights below fp16's normal range (|w| < 6e-5), which keep 1e-8-scale precision.

fbgemm's kernel also computes each row bit for bit the same whatever rows are beside it; MKL's fp32 paths round a
one-row product slightly differently from a several-row one (~1e-7 relative). Neither makes the whole step
row-invariant (attention over one query and over several differ in the last bits), so MTP's identical greedy
output is a tested property of every kernel, and ``mimo bench decode`` reports it (``identical``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F

# torch 2.13 marks the fbgemm fp16 entry points deprecated (they stay the CPU fp16-weight GEMM that torch.ao's
# dynamic quantization calls); the engine probes for them at load and falls back to fp32 when they are gone.
warnings.filterwarnings("ignore", message=r"fbgemm_\w+ is deprecated", category=UserWarning)


class TransposedLinear:
    """``x @ Wᵀ (+ b)`` with ``Wᵀ`` stored contiguously: exact fp32, for CPUs."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        self.weight_t = weight.t().contiguous()
        self.bias = bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.weight_t
        return y if self.bias is None else y + self.bias


class Fp16WeightLinear:
    """fbgemm's fp16-weight, fp32-activation GEMM (CPU): half the bytes per step of an fp32 weight."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        self.packed = torch.fbgemm_pack_gemm_matrix_fp16(weight.float().contiguous())
        self.bias = bias.float() if bias is not None else torch.zeros(weight.shape[0])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fbgemm_linear_fp16_weight_fp32_activation(x, self.packed, self.bias)


class DeviceLinear:
    """``F.linear`` as is: on a GPU the vendor GEMM already suits one-row inputs."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        self.weight = weight
        self.bias = bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


KERNELS = {"transposed": TransposedLinear, "fp16-weights": Fp16WeightLinear, "device": DeviceLinear}


def fused_linear(linears: Sequence[torch.nn.Linear], kernel: str):
    """One kernel computing the outputs of ``linears`` side by side (q, k and v; gate and up): one call instead of
    several per step, which matters when a step is a few hundred small calls."""
    with torch.no_grad():
        weight = torch.cat([linear.weight for linear in linears]) if len(linears) > 1 else linears[0].weight
        biases = [linear.bias for linear in linears]
        bias = None
        if any(b is not None for b in biases):
            zeros = [linear.weight.new_zeros(linear.out_features) for linear in linears]
            bias = torch.cat([b if b is not None else zero for b, zero in zip(biases, zeros)])
        fused = KERNELS[kernel](weight.detach(), None if bias is None else bias.detach())
        _share_storage(linears, fused)
        return fused


def _share_storage(linears: Sequence[torch.nn.Linear], fused) -> None:
    """Points each module's weight at its rows of the fused copy, so the model keeps working (tests compare
    against it) without holding its weights twice. fbgemm's packed format can't be viewed: that kernel's
    originals stay, half again the fp32 bytes on a CPU."""
    if isinstance(fused, TransposedLinear):
        rows = fused.weight_t.t()
    elif isinstance(fused, DeviceLinear):
        rows = fused.weight
    else:
        return
    start = 0
    for linear in linears:
        linear.weight.data = rows[start : start + linear.out_features]
        start += linear.out_features


class KernelLinear(torch.nn.Module):
    """An ``nn.Linear`` computed by a decode kernel, for models the engine runs through their own ``forward``
    (checkpoints other than MiMo's)."""

    def __init__(self, linear: torch.nn.Linear, kernel: str):
        super().__init__()
        bias = None if linear.bias is None else linear.bias.detach()
        self.kernel = KERNELS[kernel](linear.weight.detach(), bias)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = self.kernel(x.reshape(-1, self.in_features))
        return rows.reshape(*x.shape[:-1], self.out_features)


def swap_linears(module: torch.nn.Module, kernel: str) -> int:
    """Replaces every ``nn.Linear`` under ``module`` by a ``KernelLinear`` in place; how many it replaced."""
    replaced = 0
    for name, child in module.named_children():
        if isinstance(child, torch.nn.Linear):
            setattr(module, name, KernelLinear(child, kernel))
            replaced += 1
        else:
            replaced += swap_linears(child, kernel)
    return replaced


def fp16_weights_supported() -> bool:
    """Whether this torch build and CPU run fbgemm's fp16-weight GEMM (it needs AVX2 and the fbgemm engine)."""
    if not hasattr(torch, "fbgemm_pack_gemm_matrix_fp16") or "fbgemm" not in torch.backends.quantized.supported_engines:
        return False
    try:
        probe = Fp16WeightLinear(torch.ones(8, 8), None)
        return bool(torch.allclose(probe(torch.ones(2, 8)), torch.full((2, 8), 8.0)))
    except RuntimeError:  # "Your CPU does not support FBGEMM."
        return False
