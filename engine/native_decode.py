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

from engine.causal_model import CausalModel, MtpCall, Steps, TrunkCall, drive
from engine.grammar import Grammar, GrammarState
from engine.kv_cache import KVBuffer
from engine.prompt_cache import PromptCache, restore
from engine.sampling import LogitShaper, is_greedy
from engine.speculative import greedy_verdict, logits_to_probs, sample, sampling_verdict


@dataclass(frozen=True)
class DecodeSettings:
    temperature: float = 0.0  # below sampling.GREEDY_BELOW: greedy
    top_p: float = 1.0
    seed: int | None = None  # this sample's own seed (sampling.sample_seed), at most 64 bits
    use_mtp: bool = True
    draft_tokens: int = 1  # k: drafts per MTP step
    # Token ids never emitted (e.g. FIM sentinels inside a middle): masked in the target and the draft alike,
    # so MTP output stays identical to plain decoding.
    banned_ids: tuple[int, ...] = ()
    # Added to the logits of these token ids, and the presence and frequency penalties over the tokens
    # generated so far (OpenAI's definitions). Target and drafts see them alike (``sampling.LogitShaper``).
    logit_bias: tuple[tuple[int, float], ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    # The request's response_format as ``grammar.JsonGrammars`` compiled it (a ``grammar.Grammar``): its mask
    # applies after the shaper's changes, to the target and the drafts alike (``engine.grammar``).
    grammar: Grammar | None = None


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
        if not is_greedy(settings.temperature):
            self.generator = torch.Generator(device=lm.device)
            self.generator.manual_seed(settings.seed if settings.seed is not None else torch.seed())
        self.pending: int | None = None  # newest token, not yet read by the trunk
        self.mtp_hidden: torch.Tensor | None = None  # trunk hiddens the MTP layer has not read yet
        self.mtp_next: list[int] = []  # the token after each of them
        self.mtp_steps = 0
        self.drafts_proposed = 0  # k a step, fewer when the grammar leaves a draft nothing to choose
        # [i]: steps whose first i + 1 drafts were all accepted
        self.accepted_at = [0] * settings.draft_tokens if self.use_mtp else []
        self.shaper = LogitShaper(
            settings.banned_ids,
            settings.logit_bias,
            settings.presence_penalty,
            settings.frequency_penalty,
            vocab_size=lm.vocab_size,
            device=lm.device,
        )
        self.grammar = GrammarState(settings.grammar, settings.draft_tokens + 1) if settings.grammar else None

    def prefill(self) -> list[int]:
        return drive(self.lm, self.advance())

    def step(self) -> list[int]:
        return drive(self.lm, self.advance())

    @property
    def drafts_accepted(self) -> int:
        return sum(self.accepted_at)

    def advance(self, draft: bool = True) -> Steps:
        """The next step, the prefill first, as a generator of model calls (``run_together`` batches them).

        ``draft=False`` takes a plain step even with MTP on: a caller decoding a batch large enough to be
        compute-bound, where verifying drafts costs more than they save. The MTP layer reads the positions it
        skipped at the next drafting step, so its drafts are then what they would have been."""
        if self.pending is None:
            return self._prefill()
        return self._mtp_step() if self.use_mtp and draft else self._plain_step()

    def _prefill(self) -> Steps:
        shared, self.shared_prompt = self.shared_prompt, None  # used once; its copies go when all samples start
        if shared is not None and shared.state is not None:
            logits, hidden = shared.load(self.cache)
        else:
            logits, hidden = yield from self._read_prompt()
            if shared is not None:
                shared.save(self.cache, hidden, logits)
        self.pending = self._choose(logits[-1])
        self.shaper.record([self.pending])
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
        logits, hidden = yield TrunkCall([self.pending], self.cache)
        self.pending = self._choose(logits[-1])
        self.shaper.record([self.pending])
        if self.use_mtp:  # a step without drafts: the MTP layer's backlog grows by this position
            self.mtp_hidden = torch.cat([self.mtp_hidden, hidden], dim=1)
            self.mtp_next = [*self.mtp_next, self.pending]
        return [self.pending]

    def _mtp_step(self) -> Steps:
        drafts, draft_probs = yield from self._draft()
        past = self.cache.get_seq_length()
        target_logits, hidden = yield TrunkCall([self.pending, *drafts], self.cache, logits_for=len(drafts) + 1)
        target_logits = self.shaper.shape(target_logits, drafts)  # row i follows drafts[:i]
        if self.grammar is not None:
            self.grammar.fill(len(drafts))  # rows before it were filled while drafting
            target_logits = self.grammar.apply(target_logits)
        draft = torch.tensor(drafts, dtype=torch.long, device=target_logits.device)
        if self.generator is None:
            verdict = greedy_verdict(draft, target_logits)
        else:
            if draft_probs is None:  # no drafts: the grammar left the first nothing among the draft ids
                draft_probs = target_logits.new_zeros((0, target_logits.shape[-1]))
            missing = target_logits.shape[-1] - draft_probs.shape[-1]  # ids the draft never proposes: q = 0
            draft_probs = torch.nn.functional.pad(draft_probs, (0, missing))
            verdict = sampling_verdict(draft, draft_probs, self._probs(target_logits), self.generator)
        accepted = [*drafts[: verdict.accepted], verdict.next_token]
        if self.grammar is not None:
            self.grammar.settle(verdict.accepted, verdict.next_token)
        self.shaper.record(accepted)
        self.drafts_proposed += len(drafts)
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
        for position in range(self.draft_tokens):
            if self.grammar is not None:
                if self.grammar.ended:  # a draft was a stop token: nothing after it counts
                    break
                self.grammar.fill(position)
            logits, out = yield MtpCall(hidden, next_ids, self.mtp_cache)
            logits = self.shaper.shape(logits, drafts)[0]  # the draft follows the drafts before it
            if self.grammar is not None:
                logits = self.grammar.apply(logits, position)
                if not bool(torch.isfinite(logits).any()):  # every allowed token lies beyond the draft ids
                    break
            if self.generator is None:
                drafts.append(int(logits.argmax()))
            else:
                probs.append(self._probs(logits))
                drafts.append(int(sample(probs[-1][None], self.generator)))
            if self.grammar is not None:
                self.grammar.speculate(drafts[-1])
            hidden, next_ids = out[:, -1:], drafts[-1:]
        self.mtp_cache.truncate(confirmed + len(self.mtp_next))
        return drafts, torch.stack(probs) if probs else None

    def _choose(self, logits: torch.Tensor) -> int:
        logits = self.shaper.shape(logits)
        if self.grammar is not None:
            self.grammar.fill()
            logits = self.grammar.apply(logits)
        if self.generator is None:
            token = int(logits.argmax())
        else:
            token = int(sample(self._probs(logits), self.generator))
        if self.grammar is not None:
            self.grammar.advance(token)
        return token

    def _probs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits_to_probs(logits, self.settings.temperature, self.settings.top_p)
