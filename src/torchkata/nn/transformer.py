"""A tiny Transformer classifier of sequences, built from a13's encoder layer; a13 and m2-deep-3 train it.

Each sequence is L tokens of `features` numbers (scikit-learn's digits read as 8 rows of 8 pixels, top to
bottom): a linear embedding plus a learned position embedding, a stack of encoder layers, a mean over the
tokens and a linear head. `layer` builds one encoder layer; passing
functools.partial(nn.TransformerEncoderLayer, batch_first=True) gives the same model with PyTorch's layer.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from torchkata.nn.attention import EncoderLayer


class SequenceClassifier(nn.Module):
    def __init__(self, features: int, classes: int, length: int, d_model: int = 32, heads: int = 4,
                 layers: int = 2, dim_feedforward: int = 64, dropout: float = 0.0, norm_first: bool = True,
                 layer: Callable[..., nn.Module] = EncoderLayer):
        super().__init__()
        self.embed = nn.Linear(features, d_model)
        self.position = nn.Parameter(torch.randn(length, d_model) * 0.02)
        self.layers = nn.ModuleList(layer(d_model, heads, dim_feedforward, dropout, norm_first=norm_first)
                                    for _ in range(layers))
        # pre-norm layers leave their output un-normalised: one final LayerNorm, as GPT-2 and ViT have
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.head = nn.Linear(d_model, classes)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, L, features) -> class logits (N, classes)."""
        h = self.embed(x) + self.position[:x.shape[1]]
        for layer in self.layers:
            h = layer(h)
        return self.head(self.norm(h).mean(dim=1))


def digit_rows(x: Tensor) -> Tensor:
    """Flat 8x8 digits (N, 64) -> sequences of their 8 rows (N, 8, 8)."""
    return x.view(len(x), 8, 8)
