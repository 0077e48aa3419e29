"""b04-01: a small VGG-style CNN for CIFAR-10 (32x32 colour images, 10 classes); m2-core-1 trains it with the Adam of a14.

An optional stem (conv 3x3 -> batch norm -> ReLU at full resolution), then three stages of (conv 3x3 -> batch norm
-> ReLU) x `depth`, each closed by a 2x2 max pool (32 -> 16 -> 8 -> 4), then global average pooling and one linear
layer. With channels (16, 32, 64) and depth 1 it trains in seconds on a CPU; with a 64-channel stem and channels
(128, 256, 512) it is the plain backbone of Page's DAWNBench network (see problems/b04-01/README.md).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

IMAGE_SHAPE = (3, 32, 32)


def check_images(images: Tensor) -> None:
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"expected uint8 images [N, 3, 32, 32], got {images.dtype} {list(images.shape)}")


def channel_stats(images: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std [3] of uint8 images [N, 3, 32, 32] scaled to [0, 1] (the training set's, to
    normalise every split with)."""
    check_images(images)
    pixels = images.transpose(0, 1).reshape(3, -1).double() / 255
    return pixels.mean(dim=1).float(), pixels.std(dim=1).float()


def normalize(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 images [N, 3, 32, 32] -> float32 with each channel at zero mean and unit std (given the stats)."""
    check_images(images)
    return (images.float() / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    """conv 3x3 (no bias: batch norm's shift replaces it) -> batch norm -> ReLU, the size kept."""
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class CifarCNN(nn.Module):
    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64), depth: int = 1, num_classes: int = 10,
                 stem: int | None = None):
        super().__init__()
        if len(channels) != 3 or depth < 1:
            raise ValueError(f"CifarCNN needs three stages' channels and depth >= 1, got {channels}, depth {depth}")
        self.config = {"channels": list(channels), "depth": depth, "num_classes": num_classes, "stem": stem}
        layers, width = [], IMAGE_SHAPE[0]
        if stem is not None:
            layers += conv_bn_relu(width, stem)
            width = stem
        for out in channels:
            for _ in range(depth):
                layers += conv_bn_relu(width, out)
                width = out
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"CifarCNN expects images [N, 3, 32, 32], got {list(x.shape)}")
        return self.head(self.features(x))
