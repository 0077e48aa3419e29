"""a13: attention by hand, and the Transformer encoder layer built on it (no nn.MultiheadAttention, no
nn.Transformer*, no F.scaled_dot_product_attention). The Transformer exercises import their attention from here.

Scaled dot-product attention: softmax(q kᵀ / sqrt(d) + mask) v. Each query scores every key, the scores become
weights that sum to 1 over the keys, and the output is the weighted mean of the values. The 1/sqrt(d) keeps the
scores' variance near 1 whatever the head size, so the softmax does not saturate. Masks follow
F.scaled_dot_product_attention: a boolean mask says which keys a query may see (True: attend), a float mask is
added to the scores; a padding mask (True: padding, as nn.MultiheadAttention's key_padding_mask) hides keys.

Multi-head: one projection of x to 3 * d_model gives q, k and v; each of the `heads` slices of d_model / heads
attends on its own, and out_proj mixes the heads back. The parameters are named and shaped as
nn.MultiheadAttention's (in_proj_weight, in_proj_bias, out_proj), and the encoder layer's as
nn.TransformerEncoderLayer's, so `load_state_dict` copies PyTorch's weights in.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False) -> Tensor:
    """softmax(q kᵀ / sqrt(E) + mask) v over the last two dims: q (..., L, E), k (..., S, E), v (..., S, Ev) ->
    (..., L, Ev). attn_mask broadcasts to (..., L, S): bool (True: may attend) or float (added to the scores);
    is_causal hides the keys after each query. Dropout (on the weights) needs dropout_p > 0."""
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"q, k and v do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} "
                         "(q and k need the same last dim, k and v the same number of keys)")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if is_causal:
        if attn_mask is not None:
            raise ValueError("give either attn_mask or is_causal, not both (as F.scaled_dot_product_attention)")
        attn_mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    weights = scores.softmax(dim=-1)
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return weights @ v


class MultiheadSelfAttention(nn.Module):
    """Self-attention over (N, L, d_model) inputs (batch first), `heads` heads of d_model / heads features each."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by the number of heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model)) if bias else None
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)  # as nn.MultiheadAttention; out_proj's bias starts at 0 too
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        """x (N, L, d_model). attn_mask (L, L): bool (True: may NOT attend, as nn.MultiheadAttention) or float
        (added). key_padding_mask (N, L): True marks padding that no query attends to."""
        n, length, d_model = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(n, length, self.heads, d_model // self.heads).transpose(1, 2) for t in (q, k, v))
        if is_causal and attn_mask is None:  # a hint in nn's API; here it builds the mask
            attn_mask = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        mask = None  # additive, broadcast over the batch and the heads
        if attn_mask is not None:
            mask = x.new_zeros(attn_mask.shape).masked_fill(attn_mask, float("-inf")) \
                if attn_mask.dtype == torch.bool else attn_mask.to(x.dtype)
        if key_padding_mask is not None:
            pad = x.new_zeros(n, 1, 1, length).masked_fill(key_padding_mask.view(n, 1, 1, length), float("-inf"))
            mask = pad if mask is None else mask + pad
        out = scaled_dot_product_attention(q, k, v, mask, self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(n, length, d_model))


class EncoderLayer(nn.Module):
    """nn.TransformerEncoderLayer with batch_first=True: self-attention and a feed-forward block, each with a
    residual connection and a LayerNorm, the norm after the sum (post-norm, the 2017 paper) or, with
    norm_first, before the block (pre-norm, which trains deeper stacks without warm-up)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.self_attn = MultiheadSelfAttention(d_model, nhead, dropout)
        self.linear1, self.linear2 = nn.Linear(d_model, dim_feedforward), nn.Linear(dim_feedforward, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps), nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout, self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)
        self.activation, self.norm_first = ACTIVATIONS[activation], norm_first

    def forward(self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        """src (N, L, d_model); masks as MultiheadSelfAttention's."""
        if src.dim() != 3 or src.shape[-1] != self.linear1.in_features:
            raise ValueError(f"expected src of shape (N, L, {self.linear1.in_features}), got {tuple(src.shape)}")
        x = src
        if self.norm_first:
            x = x + self._attend(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self._attend(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._feed_forward(x))

    def _attend(self, x, attn_mask, key_padding_mask, is_causal):
        return self.dropout1(self.self_attn(x, attn_mask, key_padding_mask, is_causal))

    def _feed_forward(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))
