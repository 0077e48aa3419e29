"""b04-01: a small VGG-style CNN for CIFAR-10 (32x32 colour images, 10 classes); m2-core-1 trains it with the Adam of a14.

Three stages of (conv 3x3 -> batch norm -> ReLU) x `depth`, each closed by a 2x2 max pool (32 -> 16 -> 8 -> 4),
then global average pooling and one linear layer. With channels (16, 32, 64) and depth 1 it trains in seconds on
a CPU; with (64, 128, 256) and depth 2 it is the small VGG that reaches about 0.85-0.9 on CIFAR-10's test set
with standard augmentation (see problems/b04-01/README.md).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

IMAGE_SHAPE = (3, 32, 32)


def channel_stats(images: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std [3] of uint8 images [N, 3, 32, 32] scaled to [0, 1] (the training set's, to
    normalise every split with)."""
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"expected uint8 images [N, 3, 32, 32], got {images.dtype} {list(images.shape)}")
    pixels = images.transpose(0, 1).reshape(3, -1).double() / 255
    return pixels.mean(dim=1).float(), pixels.std(dim=1).float()


def normalize(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 images [N, 3, 32, 32] -> float32 with each channel at zero mean and unit std (given the stats)."""
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"expected uint8 images [N, 3, 32, 32], got {images.dtype} {list(images.shape)}")
    return (images.float() / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


class CifarCNN(nn.Module):
    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64), depth: int = 1, num_classes: int = 10):
        super().__init__()
        if len(channels) != 3 or depth < 1:
            raise ValueError(f"CifarCNN needs three stages' channels and depth >= 1, got {channels}, depth {depth}")
        self.config = {"channels": list(channels), "depth": depth, "num_classes": num_classes}
        layers, width = [], IMAGE_SHAPE[0]
        for out in channels:
            for _ in range(depth):
                layers += [nn.Conv2d(width, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
                width = out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"CifarCNN expects images [N, 3, 32, 32], got {list(x.shape)}")
        return self.head(self.features(x))
