"""Rollouts on the native engine's decoder, from the policy's weights as they are now.

RL samples from the model it is training, so rollouts cannot go through a ``NativeEngine`` that loads a
checkpoint from disk. ``sample_groups`` builds the engine's ``CausalModel`` (its lean forward and, for MiMo
checkpoints, MTP self-speculative decoding) over the in-memory model at every call, so each step samples from the
weights the last optimiser step left, and decodes all sequences of all groups together with the engine's
continuous batching (``run_together``): a sequence leaves the batch when it stops and a waiting one takes its
place. The n samples of a group read their prompt once (``SharedPrompt``).

Speculative sampling accepts a draft with probability min(1, p/q) and resamples the residual on rejection, so the
tokens are distributed exactly as plain sampling from the policy at the same temperature: the rollouts stay
on-policy, and GRPO needs no importance correction for them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from engine.causal_model import CausalModel, run_together
from engine.native_decode import DecodeSettings, SequenceDecoder, SharedPrompt
from engine.sampling import sample_seed


@dataclass(frozen=True)
class SamplingSettings:
    max_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    use_mtp: bool = True
    draft_tokens: int = 3  # k, MTP drafts per step
    # Drafts only while at most this many sequences decode together (None: always). A larger batch is
    # compute-bound on a CPU, where verifying drafts costs more than they save (docs/benchmarks.md).
    draft_max_batch: int | None = None
    stop_ids: tuple[int, ...] = ()  # a completion ends after the first of these (kept as its last token)
    banned_ids: tuple[int, ...] = ()  # never sampled (the engine bans FIM sentinels; RL leaves this empty)
    max_batch: int = 64  # sequences decoded together
    kernel: str = "transposed"  # engine.linear_kernels; "transposed" is exact fp32 on CPU, "device" elsewhere


@dataclass(frozen=True)
class Completion:
    token_ids: tuple[int, ...]  # ends with a stop id when ``finished``
    finished: bool  # False: cut at max_tokens (truncated)


@dataclass
class RolloutStats:
    sequences: int = 0
    tokens: int = 0
    seconds: float = 0.0
    drafts_proposed: int = 0
    drafts_accepted: int = 0
    per_position: list[int] = field(default_factory=list)  # [i]: steps whose first i + 1 drafts were accepted

    @property
    def acceptance(self) -> float | None:
        """The share of MTP drafts the policy accepted (None without drafts)."""
        return self.drafts_accepted / self.drafts_proposed if self.drafts_proposed else None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


class _Sequence:
    def __init__(self, group: int, leader: _Sequence | None, decoder: SequenceDecoder):
        self.group = group
        self.leader = leader  # the group's first sample, which reads the shared prompt for all of them
        self.decoder = decoder
        self.tokens: list[int] = []
        self.finished = False
        self.done = False

    @property
    def ready(self) -> bool:
        """A follower starts once its leader has read the prompt, so it copies the prompt's cache."""
        return self.leader is None or self.leader.decoder.pending is not None


def sample_groups(
    model: torch.nn.Module, prompts: list[list[int]], n: int, settings: SamplingSettings, seed: int = 0
) -> tuple[list[list[Completion]], RolloutStats]:
    """``n`` completions of each prompt (token ids), decoded together; the same seed gives the same completions."""
    started = time.perf_counter()
    lm = CausalModel(_inference_copy(model), settings.kernel)
    if lm.mtp_layers:
        lm.restrict_drafts()
    waiting: list[_Sequence] = []
    for group, ids in enumerate(prompts):
        shared, leader = (SharedPrompt() if n > 1 else None), None
        for index in range(n):
            settings_i = _decode_settings(settings, seed, group, index)
            decoder = SequenceDecoder(lm, ids, settings_i, len(ids) + settings.max_tokens, None, shared)
            waiting.append(_Sequence(group, leader, decoder))
            leader = leader or waiting[-1]
    everyone = list(waiting)
    running: list[_Sequence] = []
    with torch.inference_mode():
        while waiting or running:
            room = settings.max_batch - len(running)
            admitted = [sequence for sequence in waiting if sequence.ready][:room]
            waiting = [sequence for sequence in waiting if sequence not in admitted]
            running += admitted
            _step(lm, running, settings)
            running = [sequence for sequence in running if not sequence.done]
    completions: list[list[Completion]] = [[] for _ in prompts]
    for sequence in everyone:
        completions[sequence.group].append(Completion(tuple(sequence.tokens), sequence.finished))
    return completions, _stats(everyone, time.perf_counter() - started)


def _inference_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of the weights as they are now, for the engine's kernels: they fuse q/k/v and gate/up into new
    tensors and re-point the model's own weights at them (linear_kernels._share_storage), which a model being
    trained must not have done to it. For nano a copy costs ~20 ms of a several-second rollout."""
    import copy

    return copy.deepcopy(model).eval().requires_grad_(False)


def _step(lm: CausalModel, running: list[_Sequence], settings: SamplingSettings) -> None:
    """One decode step of every running sequence (a first step reads the prompt), batched."""
    draft = settings.draft_max_batch is None or len(running) <= settings.draft_max_batch
    outcomes = run_together(lm, [sequence.decoder.advance(draft) for sequence in running])
    for sequence, outcome in zip(running, outcomes):
        if isinstance(outcome, Exception):
            raise outcome
        for token in outcome:
            sequence.tokens.append(token)
            if token in settings.stop_ids:
                sequence.finished = sequence.done = True
                break
            if len(sequence.tokens) >= settings.max_tokens:
                sequence.done = True
                break


def rollout_seed(seed: int, group: int, index: int) -> int:
    """The sampling seed of sample ``index`` of prompt ``group`` in a call seeded ``seed``: the engine's
    ``sample_seed`` (a SeedSequence hash) applied twice, so every (seed, group, index) gets its own reproducible,
    independent stream; a linear mix such as ``seed * a + group * b + index`` makes different triples collide."""
    return sample_seed(sample_seed(seed, group), index)


def _decode_settings(settings: SamplingSettings, seed: int, group: int, index: int) -> DecodeSettings:
    return DecodeSettings(
        temperature=settings.temperature,
        top_p=settings.top_p,
        seed=rollout_seed(seed, group, index),
        use_mtp=settings.use_mtp,
        draft_tokens=settings.draft_tokens,
        banned_ids=settings.banned_ids,
    )


def _stats(sequences: list[_Sequence], seconds: float) -> RolloutStats:
    decoders = [sequence.decoder for sequence in sequences]
    positions = [d.accepted_at for d in decoders if d.accepted_at]
    return RolloutStats(
        sequences=len(sequences),
        tokens=sum(len(sequence.tokens) for sequence in sequences),
        seconds=seconds,
        drafts_proposed=sum(d.drafts_proposed for d in decoders),
        drafts_accepted=sum(d.drafts_accepted for d in decoders),
        per_position=[sum(column) for column in zip(*positions)] if positions else [],
    )
