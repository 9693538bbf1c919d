"""Rollouts on the engine's decoder from an in-memory policy: groups, stops, seeds, MTP, and a model left intact."""

from __future__ import annotations

import pytest
import torch

from training.rl.rollout import SamplingSettings, sample_groups


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    from training.rl.policy import load_policy

    torch.set_num_threads(1)
    model, tokenizer = load_policy(str(tiny_model_dir))
    return model, tokenizer


def _prompts(tokenizer) -> list[list[int]]:
    return [tokenizer("def f(x):\n    return")["input_ids"], tokenizer("import os\n")["input_ids"]]


def test_each_prompt_gets_n_completions_that_end_at_a_stop_or_the_limit(policy):
    model, tokenizer = policy
    stop = tuple(range(0, 512, 3))  # a third of the vocabulary stops: some samples finish, none run on forever
    settings = SamplingSettings(max_tokens=12, temperature=1.0, stop_ids=stop, max_batch=3)
    groups, stats = sample_groups(model, _prompts(tokenizer), 4, settings, seed=5)
    assert [len(group) for group in groups] == [4, 4]
    for completion in (c for group in groups for c in group):
        if completion.finished:
            assert completion.token_ids[-1] in stop and not set(completion.token_ids[:-1]) & set(stop)
        else:
            assert len(completion.token_ids) == 12 and not set(completion.token_ids) & set(stop)
    assert stats.sequences == 8 and stats.tokens == sum(len(c.token_ids) for g in groups for c in g)
    assert stats.drafts_proposed > 0  # the tiny model has an MTP layer: drafts were made


def test_the_same_seed_gives_the_same_rollouts_and_another_seed_others(policy):
    model, tokenizer = policy
    settings = SamplingSettings(max_tokens=10, temperature=1.0, max_batch=8)
    first, _ = sample_groups(model, _prompts(tokenizer), 3, settings, seed=11)
    again, _ = sample_groups(model, _prompts(tokenizer), 3, SamplingSettings(max_tokens=10, max_batch=2), seed=11)
    other, _ = sample_groups(model, _prompts(tokenizer), 3, settings, seed=12)
    assert first == again  # batching (8 or 2 sequences at a time) does not change what each sequence samples
    assert first != other
    assert len({c.token_ids for c in first[0]}) > 1  # the samples of a group differ


def test_greedy_mtp_rollouts_equal_plain_ones(policy):
    model, tokenizer = policy
    plain, _ = sample_groups(model, _prompts(tokenizer), 1, SamplingSettings(max_tokens=24, temperature=0.0,
                                                                               use_mtp=False))  # fmt: skip
    drafted, stats = sample_groups(model, _prompts(tokenizer), 1, SamplingSettings(max_tokens=24, temperature=0.0))
    assert drafted == plain and stats.drafts_proposed > 0


def test_drafting_only_in_small_batches_keeps_the_rollouts_and_drafts_once_the_batch_shrinks(policy):
    """With draft_max_batch, steps over more sequences are plain; drafts start as samples finish. Greedy
    rollouts are those of plain decoding whatever the threshold; sampled ones draft less than at every step."""
    model, tokenizer = policy
    stop = tuple(range(0, 512, 25))  # samples finish at different lengths, so the batch shrinks
    prompts = _prompts(tokenizer)

    def rollouts(n: int, temperature: float, **options):
        settings = SamplingSettings(max_tokens=24, temperature=temperature, stop_ids=stop, **options)
        return sample_groups(model, prompts, n, settings, seed=3)

    plain, _ = rollouts(1, 0.0, use_mtp=False)
    assert rollouts(1, 0.0, draft_max_batch=1)[0] == rollouts(1, 0.0, draft_max_batch=0)[0] == plain
    assert rollouts(1, 0.0)[0] == plain
    _, never = rollouts(4, 1.0, draft_max_batch=0)
    small, some = rollouts(4, 1.0, draft_max_batch=3)
    _, every = rollouts(4, 1.0)
    assert never.drafts_proposed == 0 < some.drafts_proposed < every.drafts_proposed
    assert len({len(c.token_ids) for group in small for c in group}) > 1  # the batch did shrink


def test_rollouts_leave_the_training_model_as_it_was(policy, tmp_path):
    model, tokenizer = policy
    before = {name: (p.data_ptr(), p.is_contiguous(), p.clone()) for name, p in model.named_parameters()}
    sample_groups(model, _prompts(tokenizer), 2, SamplingSettings(max_tokens=6), seed=1)
    for name, parameter in model.named_parameters():
        pointer, contiguous, value = before[name]
        assert parameter.data_ptr() == pointer and parameter.is_contiguous() == contiguous
        assert torch.equal(parameter, value)
    model.save_pretrained(tmp_path)  # shared or re-pointed storage would fail here


def test_rollout_seeds_are_distinct_per_group_and_sample_and_reproducible():
    from engine.sampling import sample_seed
    from training.rl.rollout import rollout_seed

    triples = [(seed, group, index) for seed in range(2) for group in range(8) for index in range(1010)]
    seeds = [rollout_seed(*triple) for triple in triples]
    assert len(set(seeds)) == len(triples)  # the old linear mix gave (0, 1, 0) and (0, 0, 1009) one stream
    assert all(0 <= seed < 2**63 for seed in seeds)
    assert [rollout_seed(*triple) for triple in triples[:50]] == seeds[:50]  # the same inputs, the same seeds
    assert rollout_seed(7, 2, 3) == sample_seed(sample_seed(7, 2), 3)  # the engine's derivation
