"""A MiMo model's decode step as a few dozen tensor calls: the native engine's forward for MiMo checkpoints.

transformers' modules are written for training and for every model family: each decoder layer makes three
projection calls for q, k and v, two for gate and up, seven tensor calls per RMSNorm, and passes its
arguments through several layers of keyword plumbing. At nano's size a decode step is mostly that Python
work, not arithmetic (a 6-layer step spent 1.3 of its 3 ms between kernels). This forward reads the same
weights with fused q/k/v and gate/up projections (``linear_kernels.fused_linear``), a five-call RMSNorm and one
rotary call for queries and keys together, for any number of new positions. The model definition stays the
reference: tests hold this forward to ``MiMoForCausalLM``'s logits and MTP logits.

Several sequences run as one batch: their new positions are stacked into one ``x`` (rows, hidden), every
projection and norm runs once over all rows, and attention runs per sequence (``Segment``) over its own cache.
Decoding reads every weight once a step whatever the row count, so a batch of sequences costs little more
than one (``linear_kernels``).

Shapes: ``x`` is (rows, hidden); ``cos``/``sin`` are (rows, head_dim); a segment's ``mask`` is None (one new
position: it sees the whole cache), ``CAUSAL`` (a prompt read into an empty cache) or (1, 1, rows,
past + rows) booleans; caches are ``KVBuffer``s.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.linear_kernels import KERNELS, fused_linear

# The mask of a prompt read into an empty cache: SDPA's own causal masking skips the blocks above the diagonal
# (a 1,500-token prefill of nano took 450 ms with an explicit mask on CPU).
CAUSAL = "causal"


@dataclass(frozen=True)
class Segment:
    """One sequence's rows in a batched call: how many, the cache they extend and their attention mask."""

    rows: int
    cache: object
    mask: torch.Tensor | str | None


def last_rows(segments: list[Segment]) -> list[int]:
    """The index of each segment's last row in the stacked rows."""
    ends, end = [], 0
    for segment in segments:
        end += segment.rows
        ends.append(end - 1)
    return ends


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Qwen2RMSNorm's arithmetic in its order: statistics in float32 whatever the activations' dtype.
    (``F.rms_norm`` took twice the time of these five calls per call on CPU in torch 2.13.)"""
    if x.dtype != torch.float32:
        return weight * rms_norm(x.float(), torch.ones((), device=x.device), eps).to(x.dtype)
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


class DecoderLayerStep:
    """One Qwen2 decoder layer (a trunk layer, or the decoder layer inside an MTP layer)."""

    def __init__(self, layer: torch.nn.Module, config, kernel: str):
        attention = layer.self_attn
        self.qkv = fused_linear([attention.q_proj, attention.k_proj, attention.v_proj], kernel)
        self.o = fused_linear([attention.o_proj], kernel)
        self.gate_up = fused_linear([layer.mlp.gate_proj, layer.mlp.up_proj], kernel)
        self.down = fused_linear([layer.mlp.down_proj], kernel)
        self.input_norm = layer.input_layernorm.weight.detach()
        self.post_attention_norm = layer.post_attention_layernorm.weight.detach()
        self.eps = config.rms_norm_eps
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.intermediate = config.intermediate_size
        self.scale = self.head_dim**-0.5

    def __call__(self, x, cos, sin, segments: list[Segment], layer_index: int) -> torch.Tensor:
        rows = x.shape[0]
        qkv = self.qkv(rms_norm(x, self.input_norm, self.eps))
        heads = qkv.view(rows, self.heads + 2 * self.kv_heads, self.head_dim).transpose(0, 1)
        rotated = rotate(heads[: self.heads + self.kv_heads], cos, sin)  # queries and keys in one call
        outputs, start = [], 0
        for segment in segments:
            end = start + segment.rows
            queries, keys = rotated[None, : self.heads, start:end], rotated[None, self.heads :, start:end]
            values = heads[None, self.heads + self.kv_heads :, start:end]
            keys, values = segment.cache.update(keys, values, layer_index)
            outputs.append(self.attend(queries, keys, values, segment.mask)[0])
            start = end
        attention = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)  # (heads, rows, head_dim)
        x = x + self.o(attention.transpose(0, 1).reshape(rows, -1))
        gate_up = self.gate_up(rms_norm(x, self.post_attention_norm, self.eps))
        return x + self.down(F.silu(gate_up[:, : self.intermediate]) * gate_up[:, self.intermediate :])

    def attend(self, queries, keys, values, mask) -> torch.Tensor:
        groups = self.heads // self.kv_heads
        if groups > 1 and queries.device.type != "cpu" and isinstance(mask, torch.Tensor):
            # transformers' rule: CUDA's memory-efficient kernel takes masks but not grouped heads, so a
            # masked verification would fall back to the math kernel; repeat the key/value heads for it only.
            keys, values = keys.repeat_interleave(groups, dim=1), values.repeat_interleave(groups, dim=1)
            groups = 1
        causal = isinstance(mask, str)
        return F.scaled_dot_product_attention(
            queries,
            keys,
            values,
            attn_mask=None if causal else mask,
            is_causal=causal,
            scale=self.scale,
            enable_gqa=groups > 1,
        )


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of (heads, positions, head_dim), transformers' ``rotate_half`` convention."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


class MtpLayerStep:
    """MTP layer i: norms and the [hidden, embedding] projection around a decoder layer, then its final norm."""

    def __init__(self, layer: torch.nn.Module, config, kernel: str):
        self.hidden_norm = layer.hidden_layernorm.weight.detach()
        self.token_norm = layer.token_layernorm.weight.detach()
        self.final_norm = layer.final_layernorm.weight.detach()
        self.input_proj = fused_linear([layer.input_proj], kernel)
        self.decoder = DecoderLayerStep(layer, config, kernel)
        self.eps = config.rms_norm_eps

    def __call__(self, hidden, token_embeds, cos, sin, segments: list[Segment]) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the layer's output rows (what a next MTP step reads) and each segment's last row, final-normed."""
        hidden = rms_norm(hidden, self.hidden_norm, self.eps)
        fused = torch.cat([hidden, rms_norm(token_embeds, self.token_norm, self.eps)], dim=-1)  # MiMo's order
        out = self.decoder(self.input_proj(fused), cos, sin, segments, 0)
        last = out[-1:] if len(segments) == 1 else out[last_rows(segments)]
        return out, rms_norm(last, self.final_norm, self.eps)


class MiMoStep:
    """The trunk, its LM head and the MTP layers of a loaded ``MiMoForCausalLM``, as decode-step kernels."""

    def __init__(self, model: torch.nn.Module, kernel: str):
        config = model.config
        body = model.model
        self.kernel = kernel
        self.embed = body.embed_tokens.weight.detach()
        self.layers = [DecoderLayerStep(layer, config, kernel) for layer in body.layers]
        self.norm = body.norm.weight.detach()
        self.eps = config.rms_norm_eps
        self.lm_head_module = model.lm_head
        self.lm_head = fused_linear([model.lm_head], kernel)
        self.mtp_layers = [MtpLayerStep(layer, config, kernel) for layer in body.mtp_layers]
        self.draft_head = None

    def restrict_drafts(self, draft_vocab: int) -> None:
        """The draft head: the LM head's first ``draft_vocab`` rows (see ``CausalModel.restrict_drafts``)."""
        self.draft_head = KERNELS[self.kernel](self.lm_head_module.weight[:draft_vocab].detach(), None)

    def trunk(self, token_ids: torch.Tensor, cos, sin, segments: list[Segment], logit_rows):
        """Hidden states of all rows (rows, hidden) and logits of ``logit_rows`` (a slice or row indices)."""
        x = self.embed[token_ids]
        for index, layer in enumerate(self.layers):
            x = layer(x, cos, sin, segments, index)
        return self.lm_head(rms_norm(x[logit_rows], self.norm, self.eps)), x

    def mtp(self, layer_index: int, hidden, token_ids: torch.Tensor, cos, sin, segments: list[Segment]):
        """MTP layer ``layer_index`` over pairs (hidden_t, x_{t+1}): its output rows and the draft logits at each
        segment's last pair (segments, draft_vocab)."""
        out, last = self.mtp_layers[layer_index](hidden, self.embed[token_ids], cos, sin, segments)
        return out, self.draft_head(last)
