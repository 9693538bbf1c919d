"""MiMo: a Qwen2 decoder plus multi-token-prediction (MTP) layers, in the official checkpoint's layout.

Parameter names match ``XiaomiMiMo/MiMo-7B-*`` exactly (``model.mtp_layers.{i}.*``), so our checkpoints load in
vLLM as ``MiMoForCausalLM`` with MTP speculative decoding, and official checkpoints load here.

The trunk returns its last hidden state *before* the final norm as well as after it (as vLLM's ``mimo.py`` does):
the MTP layer reads the pre-norm state. One MTP layer ``k`` (0-based) at position ``t`` combines the previous
layer's hidden state at ``t`` with the embedding of token ``t+1+k`` and predicts token ``t+2+k``.

This file is copied beside saved checkpoints for ``trust_remote_code`` loading, so it imports only torch,
transformers and its sibling ``configuration_mimo``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import GenerationMixin, Qwen2Model, Qwen2PreTrainedModel
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer, Qwen2RMSNorm

from .configuration_mimo import MiMoConfig

IGNORE_INDEX = -100


@dataclass
class MiMoModelOutput(BaseModelOutputWithPast):
    """``last_hidden_state`` is after the final norm; ``pre_norm_hidden_state`` feeds the MTP layers."""

    pre_norm_hidden_state: torch.Tensor | None = None


@dataclass
class MiMoCausalLMOutput(CausalLMOutputWithPast):
    """``loss`` = ``main_loss`` + λ·``mtp_loss`` when labels are given; the parts are reported separately."""

    main_loss: torch.Tensor | None = None
    mtp_loss: torch.Tensor | None = None
    mtp_logits: tuple[torch.Tensor, ...] | None = None
    pre_norm_hidden_state: torch.Tensor | None = None


class MiMoMTPLayer(Qwen2DecoderLayer):
    """One MTP layer: norms and a projection around an ordinary Qwen2 decoder layer.

    Inheriting the decoder layer keeps ``input_layernorm``, ``self_attn.*``, ``post_attention_layernorm`` and
    ``mlp.*`` directly under ``mtp_layers.{i}`` as the official checkpoint names them.
    """

    def __init__(self, config: MiMoConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.token_layernorm = Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.hidden_layernorm = Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        # MiMo concatenates [hidden, embedding], the reverse of DeepSeek-V3's [embedding, hidden].
        self.input_proj = nn.Linear(config.hidden_size * 2, config.hidden_size, bias=False)
        self.final_layernorm = Qwen2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(  # type: ignore[override]
        self,
        previous_hidden: torch.Tensor,
        token_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Returns the layer's output hidden state, before ``final_layernorm`` (the next MTP layer reads it)."""
        fused = torch.cat([self.hidden_layernorm(previous_hidden), self.token_layernorm(token_embeds)], dim=-1)
        return super().forward(
            self.input_proj(fused),
            attention_mask=attention_mask,
            position_embeddings=position_embeddings,
            past_key_values=past_key_values,
            **kwargs,
        )


class MiMoModel(Qwen2Model):
    config_class = MiMoConfig

    def __init__(self, config: MiMoConfig):
        super().__init__(config)
        self.mtp_layers = nn.ModuleList(
            [MiMoMTPLayer(config, layer_idx) for layer_idx in range(config.num_nextn_predict_layers)]
        )
        self.post_init()

    def causal_mask(self, embeds, attention_mask, cache, position_ids):
        return create_causal_mask(
            config=self.config,
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            past_key_values=cache,
            position_ids=position_ids,
        )

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> MiMoModelOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache(config=self.config)
        if position_ids is None:
            position_ids = _next_positions(inputs_embeds, past_key_values, layer_idx=0)

        mask = self.causal_mask(inputs_embeds, attention_mask, past_key_values, position_ids)
        position_embeddings = self.rotary_emb(inputs_embeds, position_ids)
        hidden = inputs_embeds
        for layer in self.layers[: self.config.num_hidden_layers]:
            hidden = layer(
                hidden,
                attention_mask=mask,
                position_embeddings=position_embeddings,
                position_ids=position_ids,
                past_key_values=past_key_values,
                use_cache=use_cache,
                **kwargs,
            )
        return MiMoModelOutput(
            last_hidden_state=self.norm(hidden),
            pre_norm_hidden_state=hidden,
            past_key_values=past_key_values if use_cache else None,
        )

    def mtp_forward(
        self,
        layer_index: int,
        previous_hidden: torch.Tensor,
        next_token_ids: torch.LongTensor,
        position_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        past_key_values: Cache | None = None,
    ) -> torch.Tensor:
        """Runs MTP layer ``layer_index`` and returns its hidden state (before ``final_layernorm``).

        ``previous_hidden[:, t]`` is the trunk's pre-norm state (or the previous MTP layer's output) at
        position ``t``; ``next_token_ids[:, t]`` is the token ``t+1+layer_index``. ``past_key_values`` is the MTP
        layer's own cache, indexed by ``layer_index``; it is separate from the trunk's.
        """
        layer = self.mtp_layers[layer_index]
        embeds = self.embed_tokens(next_token_ids)
        if position_ids is None:
            position_ids = _next_positions(embeds, past_key_values, layer_idx=layer_index)
        mask = create_causal_mask(
            config=self.config,
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            past_key_values=past_key_values,
            position_ids=position_ids,
            layer_idx=layer_index,
        )
        position_embeddings = self.rotary_emb(embeds, position_ids)
        return layer(previous_hidden, embeds, mask, position_embeddings, past_key_values=past_key_values)


class MiMoForCausalLM(Qwen2PreTrainedModel, GenerationMixin):
    config_class = MiMoConfig
    _no_split_modules = ["Qwen2DecoderLayer", "MiMoMTPLayer"]
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}  # only if tie_word_embeddings

    def __init__(self, config: MiMoConfig):
        super().__init__(config)
        self.model = MiMoModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        # λ in L = L_main + λ·L_mtp. Training schedules change it (MiMo: 0.3, then 0.1).
        self.mtp_loss_weight = 0.3
        # α: how much of each MTP layer's target is the main model's own (detached) prediction of the same
        # token rather than the data's token. 0 is MiMo's recipe; > 0 self-distils the draft head toward what
        # the main model will verify (EAGLE's and Medusa-2's observation: drafts that imitate the target are
        # accepted more often).
        self.mtp_distill_weight = 0.0
        # τ: the teacher's softmax temperature in that distillation. Below 1 it sharpens the target toward the
        # main model's top token, which is the one a greedy verification accepts.
        self.mtp_distill_temperature = 1.0
        self.post_init()

    @property
    def num_mtp_layers(self) -> int:
        return len(self.model.mtp_layers)

    def mtp_logits(self, layer_index: int, mtp_hidden: torch.Tensor) -> torch.Tensor:
        """Logits of MTP layer ``layer_index`` from its hidden state (shared LM head)."""
        return self.lm_head(self.model.mtp_layers[layer_index].final_layernorm(mtp_hidden))

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> MiMoCausalLMOutput:
        kwargs.pop("num_items_in_batch", None)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(outputs.last_hidden_state[:, keep, :])
        result = MiMoCausalLMOutput(
            logits=logits,
            past_key_values=outputs.past_key_values,
            pre_norm_hidden_state=outputs.pre_norm_hidden_state,
        )
        if labels is None:
            return result
        if input_ids is None:
            raise ValueError("training with labels needs input_ids (the MTP layers embed future tokens)")
        main_logits = self.lm_head(outputs.last_hidden_state)
        result.main_loss = shifted_cross_entropy(main_logits, labels, shift=1)
        result.loss = result.main_loss
        if self.num_mtp_layers:
            result.mtp_logits, result.mtp_loss = self._mtp_training_loss(
                outputs.pre_norm_hidden_state, input_ids, labels, attention_mask, main_logits.detach()
            )
            result.loss = result.main_loss + self.mtp_loss_weight * result.mtp_loss
        return result

    def _mtp_training_loss(self, trunk_hidden, input_ids, labels, attention_mask, main_logits):
        """Mean loss over MTP layers; layer ``k`` at position ``t`` predicts token ``t+2+k``: cross-entropy
        against the data's token, mixed with the main model's distribution for it by ``mtp_distill_weight``."""
        previous = trunk_hidden
        all_logits, losses = [], []
        alpha = self.mtp_distill_weight
        for k in range(self.num_mtp_layers):
            # Token t+1+k at position t; the wrapped-around tail is never a target (labels are masked there).
            next_ids = torch.roll(input_ids, shifts=-(k + 1), dims=1)
            previous = self.model.mtp_forward(k, previous, next_ids, attention_mask=attention_mask)
            logits = self.mtp_logits(k, previous)
            all_logits.append(logits)
            loss = shifted_cross_entropy(logits, labels, shift=k + 2) if alpha < 1 else 0.0
            if alpha > 0:
                distilled = shifted_distillation(
                    logits, main_logits, labels, shift=k + 2, temperature=self.mtp_distill_temperature
                )
                loss = (1 - alpha) * loss + alpha * distilled
            losses.append(loss)
        return tuple(all_logits), torch.stack(losses).mean()


def _next_positions(embeds: torch.Tensor, cache: Cache | None, layer_idx: int) -> torch.Tensor:
    """Positions of new tokens that follow what the cache (one layer of it) has already seen."""
    seen = cache.get_seq_length(layer_idx) if cache is not None else 0
    return (torch.arange(embeds.shape[1], device=embeds.device) + seen).unsqueeze(0)


def shifted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, shift: int) -> torch.Tensor:
    """Cross-entropy of ``logits[:, t]`` against ``labels[:, t + shift]``, ignoring ``IGNORE_INDEX``."""
    vocab = logits.shape[-1]
    predicted = logits[:, :-shift, :].reshape(-1, vocab).float()
    targets = labels[:, shift:].reshape(-1).to(predicted.device)
    return F.cross_entropy(predicted, targets, ignore_index=IGNORE_INDEX)


def shifted_distillation(
    logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, shift: int, temperature: float = 1.0
) -> torch.Tensor:
    """Cross-entropy of ``logits[:, t]`` against the teacher's distribution (at ``temperature``) for the same
    token, token ``t + shift``, which the teacher predicts at ``t + shift - 1``; positions whose label is ignored
    are skipped."""
    vocab = logits.shape[-1]
    predicted = logits[:, :-shift, :].reshape(-1, vocab).float()
    teacher = (teacher_logits[:, shift - 1 : -1, :].reshape(-1, vocab).float() / temperature).softmax(dim=-1)
    kept = (labels[:, shift:].reshape(-1) != IGNORE_INDEX).to(predicted.device)
    per_position = -(teacher * predicted.log_softmax(dim=-1)).sum(dim=-1)
    return (per_position * kept).sum() / kept.sum().clamp(min=1)
