"""a07: LayerNorm by hand. Write `layer_norm` and the `LayerNorm` module without PyTorch's own layer norm
(F.layer_norm, torch.layer_norm, nn.LayerNorm and torch.native_layer_norm are off limits).

Grade it:  torchkata check a07
"""
from __future__ import annotations

from torch import Tensor, nn


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise `x` over its trailing dims given by `normalized_shape` (an int, a tuple, a list or a torch.Size):
    (x - mean) / sqrt(var + eps) with the biased variance, then times `weight` and plus `bias` where given.

    Must match F.layer_norm in values and gradients, return the input's dtype (float16 and bfloat16 too, without
    overflowing), accept empty and non-contiguous inputs, and raise a ValueError that names both shapes when
    normalized_shape does not match the input's trailing dims (or when weight / bias have the wrong shape), a
    ValueError for an empty normalized_shape and a TypeError for integer input.
    """
    raise NotImplementedError("a07: write layer_norm")


class LayerNorm(nn.Module):
    """Drop-in for nn.LayerNorm: the same arguments, parameters (weight, bias), initial values and state_dict keys."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        raise NotImplementedError("a07: write LayerNorm.__init__")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("a07: write LayerNorm.forward")
