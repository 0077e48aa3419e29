"""b04-01: a VGG-style CNN for CIFAR-10 and its input normalisation. Fill in every body; keep the signatures.

Grade it:  torchkata check b04-01
Run it:    snakemake --cores 2 results/b04-01/starter-default/runs/seed-0/metrics.json
"""
from __future__ import annotations

from torch import Tensor, nn


def channel_stats(images: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and sample std, float32 [3] each, of uint8 images [N, 3, 32, 32] scaled to [0, 1].
    ValueError naming "uint8 images [N, 3, 32, 32]" and what was given for anything else."""
    raise NotImplementedError


def normalize(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 images [N, 3, 32, 32] -> float32 (images / 255 - mean[c]) / std[c] per channel c.
    The same ValueError as channel_stats for anything but uint8 [N, 3, 32, 32]."""
    raise NotImplementedError


class CifarCNN(nn.Module):
    """Optional stem: conv 3x3 (3 -> stem) -> batch norm -> ReLU at 32 x 32. Then three stages, for each of
    `channels`: `depth` times (conv 3x3, padding 1, no bias -> batch norm -> ReLU), then a 2x2 max pool
    (32 -> 16 -> 8 -> 4). Then global average pooling and one linear layer to `num_classes`.
    `self.config` = {"channels": list, "depth", "num_classes", "stem"} (CifarCNN(**config) rebuilds it).
    ValueError "needs three stages' channels and depth >= 1" for other channels or depth; forward raises
    ValueError "CifarCNN expects images [N, 3, 32, 32], got [...]" for any other input shape."""

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64), depth: int = 1, num_classes: int = 10,
                 stem: int | None = None):
        super().__init__()
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError
