"""A deliberately costly per-batch augmentation of Fashion-MNIST-sized images, and an epoch of augmented batches in a
seeded order: the work m3-core-1's loaders prepare (serially, or ahead on a background thread)."""
from __future__ import annotations

from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from torchkata.training.loop import batch_order
from torchkata.vision.augment import random_crop, random_flip


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """A deliberately costly augmentation of uint8 images [B, H, W] -> float32 [B, 1, H, W]: scaled to [0, 1], b04-04's
    random shift by up to 2 pixels (padded crop) and random horizontal flip, then a 5 x 5 Gaussian blur of random
    width and Gaussian noise; every draw from `generator`, in one order."""
    x = random_flip(random_crop(images.float().div(255).unsqueeze(1), 2, generator), generator)
    b, _, h, w = x.shape
    sigma = 0.5 + torch.rand(b, generator=generator)  # one blur width per image: a grouped convolution
    offsets = torch.arange(-2, 3, dtype=torch.float32)
    taps = torch.exp(-offsets**2 / (2 * sigma[:, None] ** 2))
    taps = taps / taps.sum(1, keepdim=True)
    kernels = (taps[:, :, None] * taps[:, None, :]).unsqueeze(1)  # [B, 1, 5, 5]
    x = F.conv2d(x.reshape(1, b, h, w), kernels, padding=2, groups=b).reshape(b, 1, h, w)
    return x + 0.05 * torch.randn(x.shape, generator=generator)


def augmented_batches(images: Tensor, labels: Tensor, batch_size: int, generator: torch.Generator,
                      transform: Callable[[Tensor, torch.Generator], Tensor] = augment
                      ) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch of (transform(images[idx]), labels[idx]) in a seeded order, the transform drawing from the same
    generator: a fresh generator of the same seed gives the same batches."""
    for idx in batch_order(len(images), batch_size, generator):
        yield transform(images[idx], generator), labels[idx]
