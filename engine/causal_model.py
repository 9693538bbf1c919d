"""The model calls a decode step makes (``TrunkCall``, ``MtpCall``), the loaded model that answers them
(``CausalModel``, with a lean forward for MiMo checkpoints), and how steps run: alone (``drive``) or with the
calls of several sequences batched into one forward (``run_together``). The decode loop itself is in
``native_decode``."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import torch

from engine.kv_cache import KVBuffer
from engine.lean_forward import CAUSAL, MiMoStep, Segment, last_rows
from engine.linear_kernels import swap_linears


@dataclass(frozen=True)
class TrunkCall:
    """The trunk reads ``token_ids`` after its cached positions; logits for the last ``logits_for``."""

    token_ids: list[int]
    cache: object
    logits_for: int = 1


@dataclass(frozen=True)
class MtpCall:
    """MTP layer 0 reads pairs (hidden_t, x_{t+1}): ``hidden`` (1, q, hidden) and ``next_ids`` (q)."""

    hidden: torch.Tensor
    next_ids: list[int]
    cache: KVBuffer


def _rows_of(stacked: torch.Tensor, segments: list[Segment]) -> list[torch.Tensor]:
    """Each segment's rows of a stacked (rows, hidden) tensor, as (1, rows, hidden)."""
    if len(segments) == 1:
        return [stacked[None]]
    return [part[None] for part in stacked.split([segment.rows for segment in segments])]


class CausalModel:
    """The parts of a loaded checkpoint the decoder needs, with a lean forward for MiMo models.

    MiMo models run ``lean_forward.MiMoStep`` (fused projections through ``kernel``, see ``linear_kernels``);
    rotary tables are computed once and sliced, a single new position needs no mask, and drafts under
    verification get a causal mask over their rows. Tests hold it to transformers' own forward.
    ``kernel`` defaults to "transposed" (exact fp32) on CPU and "device" elsewhere.
    """

    def __init__(self, model: torch.nn.Module, kernel: str | None = None):
        self.model = model
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.is_mimo = hasattr(getattr(model, "model", None), "mtp_forward")
        self.mtp_layers = model.num_mtp_layers if self.is_mimo else 0
        config = model.config
        self.vocab_size = config.vocab_size  # the width of the trunk's logits
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        self.layers = config.num_hidden_layers
        self._rope: tuple[torch.Tensor, torch.Tensor] | None = None  # (1, positions, head_dim) cos and sin
        self._columns = torch.arange(0, device=self.device)
        self.draft_vocab = 0
        self.kernel = kernel or ("transposed" if self.device.type == "cpu" else "device")
        self.step = MiMoStep(model, self.kernel) if self.is_mimo else None
        if not self.is_mimo and self.kernel != "device":  # other models run their own forward: swap its linears
            swap_linears(model, self.kernel)

    def restrict_drafts(self, draft_vocab: int | None = None) -> None:
        """Drafts choose among the first ``draft_vocab`` token ids only (default: a quarter of the vocabulary,
        at least 2048).

        The LM head is a large share of a small model's step, and the draft pays for a second one. BPE
        vocabularies are in merge order, which is roughly frequency order, so the first ids cover most tokens
        (FR-Spec's observation, arXiv 2502.14856). Output is unchanged: a draft outside the subset is simply
        never proposed, and sampling uses the restricted distribution as ``q`` in the acceptance rule.
        """
        vocab = self.model.config.vocab_size
        self.draft_vocab = min(vocab, draft_vocab or max(2048, vocab // 4))
        self.step.restrict_drafts(self.draft_vocab)

    def new_cache(self, capacity: int, layers: int | None = None):
        if not self.is_mimo:
            from transformers import DynamicCache

            return DynamicCache(config=self.model.config)
        self._reserve(capacity)
        layers = self.layers if layers is None else layers
        return KVBuffer(layers, self.kv_heads, self.head_dim, capacity, self.dtype, self.device)

    def ids(self, token_ids: list[int]) -> torch.Tensor:
        return torch.tensor(token_ids, dtype=torch.long, device=self.device)

    def trunk(self, token_ids: list[int], cache, logits_for: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Reads ``token_ids`` after the cached ones; returns logits of the last ``logits_for`` positions
        (logits_for, vocab) and, for MiMo, the pre-norm hidden states of all new positions (1, q, hidden)."""
        return self.run([TrunkCall(token_ids, cache, logits_for)])[0]

    def mtp(self, hidden: torch.Tensor, next_ids: list[int], cache: KVBuffer) -> tuple[torch.Tensor, torch.Tensor]:
        """Feeds pairs (hidden_t, x_{t+1}) (``hidden``: (1, q, hidden)) to MTP layer 0; returns its logits at the
        last pair over the first ``draft_vocab`` token ids (1, draft_vocab) and its output rows (1, q, hidden)."""
        return self.run([MtpCall(hidden, next_ids, cache)])[0]

    def run(self, calls: list) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Runs calls of one kind (all ``TrunkCall`` or all ``MtpCall``) as one batch; a result per call."""
        if isinstance(calls[0], MtpCall):
            return self._mtp_batch(calls)
        if not self.is_mimo:
            return [self._plain_model_trunk(call) for call in calls]
        ids = [token for call in calls for token in call.token_ids]
        cos, sin, segments = self._segments([(len(call.token_ids), call.cache) for call in calls])
        if len(calls) == 1:
            logit_rows = slice(len(ids) - calls[0].logits_for, None)
        else:
            ends = last_rows(segments)
            logit_rows = [end - i for end, call in zip(ends, calls) for i in range(call.logits_for - 1, -1, -1)]
        logits, hidden = self.step.trunk(self.ids(ids), cos, sin, segments, logit_rows)
        return list(zip(logits.split([call.logits_for for call in calls]), _rows_of(hidden, segments)))

    def _mtp_batch(self, calls: list[MtpCall]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.step.draft_head is None:
            self.restrict_drafts()
        ids = [token for call in calls for token in call.next_ids]
        hidden = calls[0].hidden[0] if len(calls) == 1 else torch.cat([call.hidden[0] for call in calls])
        cos, sin, segments = self._segments([(len(call.next_ids), call.cache) for call in calls])
        out, logits = self.step.mtp(0, hidden, self.ids(ids), cos, sin, segments)
        return list(zip(logits.split(1), _rows_of(out, segments)))

    def _plain_model_trunk(self, call: TrunkCall) -> tuple[torch.Tensor, None]:
        out = self.model(input_ids=self.ids(call.token_ids)[None], past_key_values=call.cache, use_cache=True)
        return out.logits[0, -call.logits_for :], None

    def _segments(self, parts: list[tuple[int, KVBuffer]]) -> tuple[torch.Tensor, torch.Tensor, list[Segment]]:
        """Rotary rows and attention segments for (new positions, cache) per sequence."""
        tables, segments = [], []
        for rows, cache in parts:
            past = cache.get_seq_length()
            tables.append(self._rotary(past, rows))
            segments.append(Segment(rows, cache, self._mask(past, rows)))
        if len(tables) == 1:
            return *tables[0], segments
        return torch.cat([cos for cos, _ in tables]), torch.cat([sin for _, sin in tables]), segments

    def _mask(self, past: int, q: int) -> torch.Tensor | str | None:
        """None for one new position (it sees the whole cache), ``CAUSAL`` for positions that start the cache,
        else (1, 1, q, past + q) causal booleans."""
        if q == 1:
            return None
        if past == 0:
            return CAUSAL
        rows = self._columns[past : past + q].unsqueeze(-1)
        return (self._columns[: past + q] <= rows)[None, None]

    def _rotary(self, past: int, q: int) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self._rope
        return cos[0, past : past + q], sin[0, past : past + q]

    def _reserve(self, positions: int) -> None:
        """Computes the rotary table and position columns once for ``positions`` (grown when a request needs more)."""
        if self._columns.numel() >= positions:
            return
        self._columns = torch.arange(positions, device=self.device)
        dummy = torch.empty(0, device=self.device, dtype=self.dtype)
        self._rope = self.model.model.rotary_emb(dummy, self._columns.unsqueeze(0))


# A decode step written as a generator: it yields the model calls it needs (``TrunkCall``, ``MtpCall``), receives
# their results, and returns the step's new tokens. Written once, it runs alone (``drive``) or batched with
# other sequences' steps (``run_together``).
Steps = Generator["TrunkCall | MtpCall", tuple, list[int]]


def drive(lm: CausalModel, steps: Steps) -> list[int]:
    """Runs one sequence's step by itself."""
    try:
        call = next(steps)
        while True:
            call = steps.send(lm.run([call])[0])
    except StopIteration as done:
        return done.value


def run_together(lm: CausalModel, steps: list[Steps]) -> list[list[int] | Exception]:
    """Runs several sequences' steps with their model calls batched; each step's tokens, or the error it raised.

    MTP calls run first, all waiting ones as one batch; trunk calls wait until no step needs an MTP call, so
    MTP verifications, plain steps and prefills share one trunk batch. An error in a batched call fails the
    steps in that batch only.
    """
    outcomes: list[list[int] | Exception | None] = [None] * len(steps)
    waiting: dict[int, TrunkCall | MtpCall] = {}

    def resume(index: int, result) -> None:
        try:
            waiting[index] = steps[index].send(result)
        except StopIteration as done:
            outcomes[index] = done.value
        except Exception as error:  # reported to that request alone
            outcomes[index] = error

    for index in range(len(steps)):
        resume(index, None)
    while waiting:
        batch = [i for i, call in waiting.items() if isinstance(call, MtpCall)] or list(waiting)
        calls = [waiting.pop(i) for i in batch]
        try:
            results = lm.run(calls)
        except Exception as error:  # the whole batch failed: so did its steps
            for index in batch:
                steps[index].close()
                outcomes[index] = error
            continue
        for index, result in zip(batch, results):
            resume(index, result)
    return outcomes
