"""A MiMo checkpoint driven for evaluation: greedy FIM line completion and teacher-forced MTP drafting."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from engine.special_tokens import SPECIAL_TOKENS
from training.errors import UserError


@dataclass
class CompletionModel:
    model: torch.nn.Module
    tokenizer: object

    @classmethod
    def load(cls, name: str) -> "CompletionModel":
        """'nano', a checkpoint directory or a cached HF id; float32 (fast and exact on CPU)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        import engine.model  # noqa: F401  (registers MiMo with the Auto classes)
        from engine.registry import resolve_model

        path = resolve_model(name)
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
        return cls(model=model, tokenizer=AutoTokenizer.from_pretrained(str(path)))

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _special(self, token: str) -> int:
        return self.tokenizer.convert_tokens_to_ids(token)

    def fim_prompt(self, prefix: str, suffix: str, prefix_tokens: int, suffix_tokens: int) -> list[int]:
        """The FIM prompt the engine would render for this tokenizer (engine.formats), with the prefix and suffix
        trimmed to their nearest ``prefix_tokens`` / ``suffix_tokens`` tokens."""
        from engine.api import FimParts
        from engine.formats import detect_fim_template

        template = detect_fim_template(self.tokenizer)
        if template is None:
            raise UserError("this model's tokenizer has no fill-in-the-middle tokens; next-line eval needs them")
        prefix = self.tokenizer.decode(self._ids(prefix)[-prefix_tokens:])
        suffix = self.tokenizer.decode(self._ids(suffix)[:suffix_tokens])
        return self._ids(template.render(FimParts(prefix=prefix, suffix=suffix)))

    @functools.cached_property
    def _fim_sentinels(self) -> torch.Tensor:
        from engine.formats import detect_fim_template, fim_sentinel_ids

        return torch.tensor(fim_sentinel_ids(self.tokenizer, detect_fim_template(self.tokenizer)), dtype=torch.long)

    @torch.inference_mode()
    def complete_line(self, point, options) -> str:
        """Greedy tokens after the FIM prompt until a newline, a control token or the token limit. As in the
        engine, the FIM sentinels are never chosen (engine.native._settings)."""
        prompt = self.fim_prompt(point.prefix, point.suffix, options.prefix_tokens, options.suffix_tokens)
        stop_ids = {self._special(token) for token in SPECIAL_TOKENS}
        banned = self._fim_sentinels
        output = self.model(input_ids=torch.tensor([prompt]), use_cache=True, logits_to_keep=1)
        generated: list[int] = []
        for _ in range(options.max_new_tokens):
            token = int(output.logits[0, -1].index_fill(-1, banned, float("-inf")).argmax())
            if token in stop_ids:
                break
            generated.append(token)
            if "\n" in self.tokenizer.decode(generated):
                break
            output = self.model(
                input_ids=torch.tensor([[token]]), past_key_values=output.past_key_values, use_cache=True
            )
        return self.tokenizer.decode(generated).split("\n")[0]

    @torch.inference_mode()
    def greedy_pair(self, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-position greedy ids of the main head and of MTP layer 0, teacher-forced on `ids`."""
        main, mtp, _ = self.teacher_forced(ids)
        return main, mtp

    @torch.inference_mode()
    def teacher_forced(self, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor | None, float]:
        """Greedy ids of the main head and of MTP layer 0 (None without one), and the main head's summed
        negative log-likelihood of tokens 1.. of `ids`, from one teacher-forced pass."""
        input_ids = torch.tensor([ids], device=self.model.device)
        trunk = self.model.model(input_ids=input_ids, use_cache=False)
        logits = self.model.lm_head(trunk.last_hidden_state)[0]
        nll = torch.nn.functional.cross_entropy(logits[:-1].float(), input_ids[0, 1:], reduction="sum")
        main = logits.argmax(-1)
        if not getattr(self.model, "num_mtp_layers", 0):
            return main.cpu(), None, float(nll)
        next_ids = torch.roll(input_ids, shifts=-1, dims=1)  # token t+1 at position t (last one unused)
        hidden = self.model.model.mtp_forward(0, trunk.pre_norm_hidden_state, next_ids)
        mtp = self.model.mtp_logits(0, hidden)[0].argmax(-1)
        return main.cpu(), mtp.cpu(), float(nll)

    def mtp_acceptance(self, texts: list[str], options) -> tuple[int, int]:
        """(accepted, positions) over windows of the texts, up to `options.acceptance_tokens` positions."""
        if not getattr(self.model, "num_mtp_layers", 0):
            return 0, 0
        stats = self.heldout_stats(texts, options)
        return stats.accepted, stats.positions

    def heldout_stats(self, texts: list[str], options) -> "HeldoutStats":
        """Teacher-forced over windows of `options.acceptance_window` tokens of each text, up to
        `options.acceptance_tokens` positions: the main head's loss per token and the MTP draft agreement."""
        stats = HeldoutStats()
        for text in texts:
            ids = self._ids(text)
            for start in range(0, len(ids), options.acceptance_window):
                if stats.loss_tokens >= options.acceptance_tokens:
                    return stats
                window = ids[start : start + options.acceptance_window]
                if len(window) >= 3:
                    main, mtp, nll = self.teacher_forced(window)
                    stats.nll += nll
                    stats.loss_tokens += len(window) - 1
                    if mtp is not None:
                        hit, count = mtp_agreement(main, mtp)
                        stats.accepted, stats.positions = stats.accepted + hit, stats.positions + count
        return stats


@dataclass
class HeldoutStats:
    nll: float = 0.0  # summed over loss_tokens predicted tokens
    loss_tokens: int = 0
    accepted: int = 0  # MTP drafts that match the main model's greedy token
    positions: int = 0

    @property
    def loss(self) -> float | None:
        return self.nll / self.loss_tokens if self.loss_tokens else None

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.positions if self.positions else None


def mtp_agreement(main_greedy, mtp_greedy) -> tuple[int, int]:
    """(accepted, positions) from per-position greedy ids of one sequence, both of length T.

    `mtp_greedy[t]` guesses token t+2; the main model's guess of the same token is `main_greedy[t + 1]`.
    """
    drafted, verified = mtp_greedy[:-1], main_greedy[1:]
    return int((drafted == verified).sum()), int(len(verified))
