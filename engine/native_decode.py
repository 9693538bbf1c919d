"""Decoding one sequence on the native backend: prefill, plain steps, and MTP draft-and-verify steps.

The MTP loop, k drafts per step. After the trunk has read tokens x_0..x_{T-1} it has pre-norm hidden states
h_0..h_{T-1} and the next token x_T (``pending``: sampled, not yet read by the trunk). MTP layer 0 reads pairs
(h_t, x_{t+1}) into its own cache and drafts d_1 ≈ x_{T+1} from the last pair. Further drafts chain the same
layer EAGLE-style: its output at the last pair stands in for the trunk's h_T, and the pair (output, d_1) at
the next position drafts d_2, and so on; these chained entries leave the MTP cache once drafting is done.
(vLLM's proposer also drafts from MTP layer 0 alone; MiMo initialised its extra inference-time MTP layers as
copies of that layer.) One trunk forward over [x_T, d_1..d_k] verifies: the target at each position decides the
draft after it (greedy: it must equal the argmax; sampling: the speculative rule in ``speculative.py``), and when
every draft is accepted the target at d_k's position gives a bonus token for free. Rejected drafts leave the
trunk cache by moving its length back, and only the accepted pairs go to the MTP layer next step. Plain decoding
is the same loop without drafts.

MiMo checkpoints run a lean path: ``lean_forward.MiMoStep`` over a preallocated cache (``KVBuffer``) with
explicit masks and positions. Other causal LMs run their own ``forward`` with a ``DynamicCache`` and decode
plainly.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import torch

from engine.kv_cache import KVBuffer
from engine.linear_kernels import swap_linears
from engine.lean_forward import CAUSAL, MiMoStep, Segment, last_rows
from engine.prompt_cache import PromptCache, restore
from engine.speculative import greedy_verdict, logits_to_probs, sample, sampling_verdict


@dataclass(frozen=True)
class DecodeSettings:
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int | None = None
    use_mtp: bool = True
    draft_tokens: int = 1  # k: drafts per MTP step
    # Token ids never emitted (e.g. FIM sentinels inside a middle): masked in the target and the draft alike,
    # so MTP output stays identical to plain decoding.
    banned_ids: tuple[int, ...] = ()


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


class SharedPrompt:
    """A request's prompt pass, shared by its n samples: the first to prefill stores its cache, hidden states
    and logits; the others copy them instead of reading the prompt again (n prefills of one prompt cost one)."""

    def __init__(self):
        self.state: tuple[torch.Tensor, torch.Tensor, int, torch.Tensor, torch.Tensor] | None = None

    def save(self, cache: KVBuffer, hidden: torch.Tensor, logits: torch.Tensor) -> None:
        length = cache.get_seq_length()
        self.state = (*cache.copy_prefix(length), length, hidden, logits)

    def load(self, cache: KVBuffer) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values, length, hidden, logits = self.state
        cache.load_prefix(keys, values, length)
        return logits, hidden


class SequenceDecoder:
    """One sample: ``prefill()`` returns the first token, each ``step()`` one or more further tokens.
    Samples of one request may share a ``SharedPrompt``; the first to prefill computes it."""

    def __init__(
        self,
        lm: CausalModel,
        prompt_ids: list[int],
        settings: DecodeSettings,
        capacity: int,
        prompt_cache: PromptCache | None = None,
        shared_prompt: SharedPrompt | None = None,
    ):
        self.lm = lm
        self.prompt_cache = prompt_cache if lm.is_mimo else None
        self.shared_prompt = shared_prompt if lm.is_mimo else None
        self.prompt_ids = prompt_ids
        self.settings = settings
        self.use_mtp = settings.use_mtp and lm.mtp_layers > 0 and settings.draft_tokens > 0
        self.draft_tokens = settings.draft_tokens
        # Room for the drafts under verification (trunk) and the chained drafts (MTP layer).
        capacity += settings.draft_tokens + 1
        self.cache = lm.new_cache(capacity)
        self.mtp_cache = lm.new_cache(capacity, layers=1) if self.use_mtp else None
        self.generator = None
        if settings.temperature > 0:
            self.generator = torch.Generator(device=lm.device)
            self.generator.manual_seed(settings.seed if settings.seed is not None else torch.seed())
        self.pending: int | None = None  # newest token, not yet read by the trunk
        self.mtp_hidden: torch.Tensor | None = None  # trunk hiddens the MTP layer has not read yet
        self.mtp_next: list[int] = []  # the token after each of them
        self.mtp_steps = 0
        # [i]: steps whose first i + 1 drafts were all accepted
        self.accepted_at = [0] * settings.draft_tokens if self.use_mtp else []
        self.banned = torch.tensor(settings.banned_ids, dtype=torch.long, device=lm.device)

    def prefill(self) -> list[int]:
        return drive(self.lm, self.advance())

    def step(self) -> list[int]:
        return drive(self.lm, self.advance())

    @property
    def drafts_proposed(self) -> int:
        return self.mtp_steps * self.draft_tokens

    @property
    def drafts_accepted(self) -> int:
        return sum(self.accepted_at)

    def advance(self) -> Steps:
        """The next step, the prefill first, as a generator of model calls (``run_together`` batches them)."""
        if self.pending is None:
            return self._prefill()
        return self._mtp_step() if self.use_mtp else self._plain_step()

    def _prefill(self) -> Steps:
        shared, self.shared_prompt = self.shared_prompt, None  # used once; its copies go when all samples start
        if shared is not None and shared.state is not None:
            logits, hidden = shared.load(self.cache)
        else:
            logits, hidden = yield from self._read_prompt()
            if shared is not None:
                shared.save(self.cache, hidden, logits)
        self.pending = self._choose(logits[-1])
        if self.use_mtp:
            self.mtp_hidden = hidden
            self.mtp_next = [*self.prompt_ids[1:], self.pending]
        return [self.pending]

    def _read_prompt(self) -> Generator[TrunkCall, tuple, tuple[torch.Tensor, torch.Tensor]]:
        reuse = self.prompt_cache.find(self.prompt_ids) if self.prompt_cache is not None else None
        reused = restore(reuse, self.cache) if reuse is not None else None
        logits, hidden = yield TrunkCall(self.prompt_ids[reuse.length if reuse else 0 :], self.cache)
        if reused is not None:
            hidden = torch.cat([reused, hidden], dim=1)
        if self.prompt_cache is not None:
            self.prompt_cache.store(self.prompt_ids, self.cache, hidden)
        return logits, hidden

    def _plain_step(self) -> Steps:
        logits, _ = yield TrunkCall([self.pending], self.cache)
        self.pending = self._choose(logits[-1])
        return [self.pending]

    def _mtp_step(self) -> Steps:
        drafts, draft_probs = yield from self._draft()
        past = self.cache.get_seq_length()
        target_logits, hidden = yield TrunkCall([self.pending, *drafts], self.cache, logits_for=len(drafts) + 1)
        target_logits = self._allowed(target_logits)
        draft = torch.tensor(drafts, device=target_logits.device)
        if draft_probs is None:
            verdict = greedy_verdict(draft, target_logits)
        else:
            missing = target_logits.shape[-1] - draft_probs.shape[-1]  # ids the draft never proposes: q = 0
            draft_probs = torch.nn.functional.pad(draft_probs, (0, missing))
            verdict = sampling_verdict(draft, draft_probs, self._probs(target_logits), self.generator)
        accepted = [*drafts[: verdict.accepted], verdict.next_token]
        self.cache.truncate(past + len(accepted))
        self.mtp_hidden = hidden[:, : len(accepted)]
        self.mtp_next = accepted
        self.pending = verdict.next_token
        self.mtp_steps += 1
        for position in range(verdict.accepted):
            self.accepted_at[position] += 1
        return accepted

    def _draft(self) -> Generator[MtpCall, tuple, tuple[list[int], torch.Tensor | None]]:
        """k drafts from MTP layer 0, chained on its own output; with sampling, also the (k, draft_vocab)
        distributions they were drawn from. The MTP cache keeps only the pairs the trunk has confirmed."""
        confirmed = self.mtp_cache.get_seq_length()
        hidden, next_ids = self.mtp_hidden, self.mtp_next
        drafts, probs = [], []
        for _ in range(self.draft_tokens):
            logits, out = yield MtpCall(hidden, next_ids, self.mtp_cache)
            logits = self._allowed(logits)[0]
            if self.generator is None:
                drafts.append(int(logits.argmax()))
            else:
                probs.append(self._probs(logits))
                drafts.append(int(sample(probs[-1][None], self.generator)))
            hidden, next_ids = out[:, -1:], drafts[-1:]
        self.mtp_cache.truncate(confirmed + len(self.mtp_next))
        return drafts, torch.stack(probs) if probs else None

    def _allowed(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` (rows × ids, possibly the draft's first ids only) with the banned ids at -inf."""
        if not self.banned.numel():
            return logits
        banned = self.banned[self.banned < logits.shape[-1]]
        return logits.index_fill(-1, banned, float("-inf"))

    def _choose(self, logits: torch.Tensor) -> int:
        logits = self._allowed(logits)
        if self.generator is None:
            return int(logits.argmax())
        return int(sample(self._probs(logits), self.generator))

    def _probs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits_to_probs(logits, self.settings.temperature, self.settings.top_p)
