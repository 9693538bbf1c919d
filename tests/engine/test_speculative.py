"""The acceptance rules: greedy keeps the target's argmax path; speculative sampling keeps its distribution."""

from __future__ import annotations

import torch

from engine.speculative import greedy_verdict, logits_to_probs, residual, sample, sampling_verdict


def one_hot_logits(token_ids: list[int], vocab: int = 8) -> torch.Tensor:
    logits = torch.zeros(len(token_ids), vocab)
    logits[torch.arange(len(token_ids)), torch.tensor(token_ids)] = 5.0
    return logits


def test_greedy_accepts_drafts_up_to_the_first_mismatch_and_corrects_it():
    target = one_hot_logits([3, 4, 5])
    assert greedy_verdict(torch.tensor([3, 4]), target).__dict__ == {"accepted": 2, "next_token": 5}
    assert greedy_verdict(torch.tensor([3, 1]), target).__dict__ == {"accepted": 1, "next_token": 4}
    assert greedy_verdict(torch.tensor([2, 4]), target).__dict__ == {"accepted": 0, "next_token": 3}


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    probs = logits_to_probs(torch.tensor([0.7, 0.2, 0.1]).log(), temperature=1.0, top_p=0.8)
    assert torch.allclose(probs, torch.tensor([0.7 / 0.9, 0.2 / 0.9, 0.0]))
    top_only = logits_to_probs(torch.tensor([0.7, 0.2, 0.1]).log(), temperature=1.0, top_p=0.5)
    assert torch.equal(top_only, torch.tensor([1.0, 0.0, 0.0]))


def test_residual_is_the_normalised_excess_of_target_over_draft():
    p, q = torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.2, 0.5, 0.3])
    assert torch.allclose(residual(p, q), torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(residual(p, p), p)


def total_variation(counts: torch.Tensor, probs: torch.Tensor) -> float:
    return 0.5 * (counts / counts.sum() - probs).abs().sum().item()


def test_speculative_sampling_emits_the_target_distribution():
    vocab, trials = 6, 20_000
    generator = torch.Generator().manual_seed(1234)
    target = torch.softmax(torch.randn(2, vocab, generator=generator) * 1.5, dim=-1)  # positions 0 and bonus
    draft_probs = torch.softmax(torch.randn(1, vocab, generator=generator) * 1.5, dim=-1)
    first, bonus = torch.zeros(vocab), torch.zeros(vocab)
    for _ in range(trials):
        draft = sample(draft_probs, generator)
        verdict = sampling_verdict(draft, draft_probs, target, generator)
        if verdict.accepted:
            first[draft] += 1
            bonus[verdict.next_token] += 1
        else:
            first[verdict.next_token] += 1
    bound = 0.03  # sampling noise at 20k trials is about 0.01
    assert total_variation(first, target[0]) < bound
    assert total_variation(bonus, target[1]) < bound
    # The test can fail: the draft distribution itself is far from the target.
    assert 0.5 * (draft_probs[0] - target[0]).abs().sum() > 3 * bound


def test_several_drafts_per_step_still_emit_the_target_distribution():
    """k = 3 drafts a step from a context-free toy: every emitted token, whichever position of a step produced
    it (accepted draft, correction or bonus), must be distributed as the target."""
    vocab, k, tokens = 5, 3, 30_000
    generator = torch.Generator().manual_seed(7)
    target = torch.softmax(torch.randn(vocab, generator=generator) * 1.5, dim=-1)
    draft = torch.softmax(torch.randn(vocab, generator=generator) * 1.5, dim=-1)
    counts = torch.zeros(vocab)
    accepted_at = [0] * k
    emitted = steps = 0
    while emitted < tokens:
        drafts = sample(draft.expand(k, vocab), generator)
        verdict = sampling_verdict(drafts, draft.expand(k, vocab), target.expand(k + 1, vocab), generator)
        for token in [*drafts[: verdict.accepted].tolist(), verdict.next_token]:
            counts[token] += 1
        emitted += verdict.accepted + 1
        steps += 1
        for position in range(verdict.accepted):
            accepted_at[position] += 1
    assert total_variation(counts, target) < 0.02  # noise at 30k tokens is about 0.006
    assert 0.5 * (draft - target).abs().sum() > 0.1  # far enough apart that a wrong rule would show
    # Every position sees both outcomes, and a later position is accepted only after the earlier ones.
    assert steps > accepted_at[0] > accepted_at[1] > accepted_at[2] > 0


def test_a_draft_that_matches_the_target_is_always_accepted():
    generator = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(2, 5, generator=generator), dim=-1)
    drafts = [sample(probs[:1], generator) for _ in range(200)]
    accepted = [sampling_verdict(draft, probs[:1], probs, generator).accepted for draft in drafts]
    assert accepted == [1] * 200
