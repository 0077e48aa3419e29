"""b01-06: cosine similarity. Write `cosine_similarity` by hand (no F.cosine_similarity, no norm functions).

Grade it:  torchkata check b01-06
"""
from __future__ import annotations

from torch import Tensor


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine similarity of x1 and x2 along `dim`, as F.cosine_similarity computes it.

    <x1, x2> / (max(||x1||, eps) * max(||x2||, eps)) along `dim` of the broadcast shape of x1 and x2; that dim
    is reduced away. Integer inputs promote against a float one; float16/bfloat16/float32/float64; differentiable.
    Raise TypeError when neither input is floating-point, ValueError naming both shapes when they do not
    broadcast, and IndexError naming a `dim` out of range of the broadcast shape.
    """
    raise NotImplementedError("b01-06: write cosine_similarity")
