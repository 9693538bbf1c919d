"""Draft-and-verify acceptance rules as small pure tensor functions.

Both rules keep the output exactly what plain decoding would give: greedy acceptance takes a draft only when it
equals the target's argmax; speculative sampling (Leviathan et al. 2023, Chen et al. 2023) accepts draft ``d``
with probability min(1, p(d)/q(d)) and on rejection resamples from the residual max(p − q, 0), so every emitted
token is distributed as the target ``p``.

Shapes: ``draft`` is (k,) token ids; ``draft_probs`` is (k, vocab) — the draft distribution ``q`` each draft was
sampled from; ``target_*`` is (k + 1, vocab) — the target model at each draft position plus one more, whose
token is the free "bonus" when every draft is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Verdict:
    accepted: int  # how many leading drafts were accepted
    next_token: int  # the target's token after them: the correction on a rejection, else the bonus token


def logits_to_probs(logits: torch.Tensor, temperature: float, top_p: float = 1.0) -> torch.Tensor:
    """Softmax at ``temperature`` over the smallest set of tokens whose mass reaches ``top_p`` (float32).

    ``temperature`` is at least ``sampling.GREEDY_BELOW`` (smaller ones decode greedily), so ``logits /
    temperature`` stays finite."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p >= 1.0:
        return probs
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    # Keep a token when the mass before it is still below top_p, and always the top token: a top_p below
    # float32's range (1e-300) compares as 0, which would otherwise drop every token.
    drop = (sorted_probs.cumsum(dim=-1) - sorted_probs) >= top_p
    drop[..., 0] = False
    sorted_probs = sorted_probs.masked_fill(drop, 0.0)
    kept = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return kept / kept.sum(dim=-1, keepdim=True)


def sample(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of ``probs``."""
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def greedy_verdict(draft: torch.Tensor, target_logits: torch.Tensor) -> Verdict:
    """Accepts the drafts that equal the target's argmax, up to the first that doesn't."""
    target = target_logits.argmax(dim=-1).tolist()  # one device-to-host copy, then plain Python
    accepted = 0
    for proposed in draft.tolist():
        if proposed != target[accepted]:
            break
        accepted += 1
    return Verdict(accepted, target[accepted])


def sampling_verdict(
    draft: torch.Tensor,
    draft_probs: torch.Tensor,
    target_probs: torch.Tensor,
    generator: torch.Generator | None = None,
) -> Verdict:
    """Speculative sampling: accept ``d`` with probability min(1, p(d)/q(d)), else resample from max(p − q, 0)."""
    k = draft.shape[0]
    positions = torch.arange(k, device=draft.device)
    p = target_probs[positions, draft]
    q = draft_probs[positions, draft]
    uniform = torch.rand(k, generator=generator, device=draft.device)
    # u < p/q, written without the division.
    rejected = (uniform * q >= p).nonzero()
    if not rejected.numel():
        return Verdict(k, int(sample(target_probs[k], generator)))
    first = int(rejected[0, 0])
    return Verdict(first, int(sample(residual(target_probs[first], draft_probs[first]), generator)))


def residual(target: torch.Tensor, draft: torch.Tensor) -> torch.Tensor:
    """norm(max(p − q, 0)); falls back to ``p`` when p ≤ q everywhere (then a rejection has probability 0)."""
    leftover = (target - draft).clamp(min=0.0)
    mass = leftover.sum()
    return leftover / mass if mass > 0 else target
