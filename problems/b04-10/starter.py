"""b04-10: transfer learning from b04-06's Fashion-MNIST CNN to handwritten digits. Fill in every body.

Grade it:  torchkata check b04-10
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from torchkata.vision.fashion_cnn import FashionCNN


def digits_to_fashion(images: Tensor, size: int = 28) -> Tensor:
    """Digits [N, 8, 8] (pixel values 0..16) -> float32 [N, 1, size, size]: upsampled (F.interpolate) and
    normalised like Fashion-MNIST (MEAN, STD of fashion_cnn). ValueError for anything but [N, H, W]."""
    raise NotImplementedError("b04-10: digits_to_fashion")


def from_pretrained(checkpoint: dict, num_classes: int) -> FashionCNN:
    """b04-06's architecture (checkpoint["config"]) with the conv features (`model.features`: weights and
    batch-norm statistics) from checkpoint["state_dict"], and a new, randomly initialised classifier and
    `num_classes`-way head."""
    raise NotImplementedError("b04-10: from_pretrained")


def set_trainable(model: FashionCNN, head_only: bool) -> None:
    """Freeze the pretrained features (head_only=True: only the new classifier and head learn), or unfreeze them."""
    raise NotImplementedError("b04-10: set_trainable")


def fine_tune(model: FashionCNN, images: Tensor, labels: Tensor, *, epochs: int, head_epochs: int, lr: float,
              full_lr: float, batch_size: int, generator: torch.Generator,
              on_epoch: Callable[[int, float], None] | None = None) -> list[float]:
    """`head_epochs` epochs of the new layers alone at `lr`, then all layers at `full_lr` until `epochs`.
    One epoch is torchkata.training.loop.train_epoch. Returns each epoch's mean training loss and calls
    on_epoch(epoch, loss) after each (from 1)."""
    raise NotImplementedError("b04-10: fine_tune")
