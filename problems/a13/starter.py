"""a13: attention by hand and a tiny Transformer encoder layer (no nn.MultiheadAttention, no nn.Transformer*,
no F.scaled_dot_product_attention, no torch._transformer_encoder_layer_fwd).

Grade it:  torchkata check a13
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False) -> Tensor:
    """softmax(q kᵀ / sqrt(E) + mask) v over the last two dims, as F.scaled_dot_product_attention:
    q (..., L, E), k (..., S, E), v (..., S, Ev) -> (..., L, Ev). attn_mask broadcasts to (..., L, S): bool
    (True: may attend) or float (added to the scores). is_causal hides the keys after each query; with an
    attn_mask too it is a ValueError that names is_causal. dropout_p > 0 drops attention weights (F.dropout).
    q, k, v that do not fit raise a ValueError naming their shapes."""
    raise NotImplementedError("a13: write scaled_dot_product_attention")


class MultiheadSelfAttention(nn.Module):
    """Self-attention over (N, L, d_model) inputs (batch first), `heads` heads of d_model / heads features each.
    Parameters as nn.MultiheadAttention's: in_proj_weight (3 d_model, d_model, xavier uniform), in_proj_bias
    (zeros), out_proj an nn.Linear with a zero bias; attributes `heads` and `dropout` (the weights' dropout
    probability, used in training mode only). d_model not divisible by heads: a ValueError naming both."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        raise NotImplementedError("a13: write MultiheadSelfAttention.__init__")

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        """x (N, L, d_model). attn_mask (L, L): bool (True: may NOT attend, nn.MultiheadAttention's convention)
        or float (added). key_padding_mask (N, L): True marks padding that no query attends to. is_causal
        without attn_mask hides later keys; with one, the attn_mask is used as given."""
        raise NotImplementedError("a13: write MultiheadSelfAttention.forward")


class EncoderLayer(nn.Module):
    """nn.TransformerEncoderLayer(batch_first=True) by hand: attributes and parameter names as its own
    (self_attn, linear1, linear2, norm1, norm2, dropout, dropout1, dropout2, norm_first), so that
    load_state_dict(torch_layer.state_dict()) copies its weights in. Post-norm by default, pre-norm with
    norm_first. An activation other than relu/gelu is a ValueError naming it."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False):
        super().__init__()
        raise NotImplementedError("a13: write EncoderLayer.__init__")

    def forward(self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        """src (N, L, d_model); masks as MultiheadSelfAttention's. Another shape is a ValueError naming the
        expected "(N, L, d_model)" and the given shape."""
        raise NotImplementedError("a13: write EncoderLayer.forward")
