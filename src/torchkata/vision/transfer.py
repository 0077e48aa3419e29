"""b04-10: transfer learning from the b04-06 Fashion-MNIST CNN to handwritten digits.

There are no weight downloads here: the "pretrained model" is b04-06's checkpoint. The target task is
scikit-learn's 8x8 digits, upsampled to 28x28 and normalised like Fashion-MNIST so the pretrained
filters see inputs of the scale they were trained on.

Only the convolutional features are transferred: the hidden layer is as specific to clothing as the
output layer, and keeping it measurably hurts (it scored below training from scratch), so the whole
classifier is new. What transfer buys on this easy task is speed: with a short training budget
the pretrained filters reach far higher accuracy than random ones; given many more epochs the
network trained from scratch catches up (b04-10's README has the numbers).

Fine-tuning runs in two phases: first only the new layers learn (the pretrained features are frozen,
so the random classifier's large early gradients cannot wreck them), then every layer learns.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from torchkata.training.loop import train_epoch
from torchkata.vision.fashion_cnn import MEAN, STD, FashionCNN

DIGITS_MAX = 16  # scikit-learn's digits have pixel values 0..16


def digits_to_fashion(images: Tensor, size: int = 28) -> Tensor:
    """Digits [N, 8, 8] (0..16) -> float32 [N, 1, size, size], bilinearly upsampled, Fashion-MNIST-normalised."""
    if images.dim() != 3:
        raise ValueError(f"expected digits [N, H, W], got {list(images.shape)}")
    x = images.float().unsqueeze(1) / DIGITS_MAX
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x - MEAN) / STD


def from_pretrained(checkpoint: dict, num_classes: int) -> FashionCNN:
    """b04-06's architecture with its trained conv features (weights and batch-norm statistics), and a new,
    randomly initialised classifier and `num_classes`-way head."""
    model = FashionCNN(**{**checkpoint["config"], "num_classes": num_classes})
    prefix = "features."
    model.features.load_state_dict({k[len(prefix):]: v for k, v in checkpoint["state_dict"].items()
                                    if k.startswith(prefix)})
    return model


def set_trainable(model: FashionCNN, head_only: bool) -> None:
    """Freeze the pretrained features (head_only=True: only the new classifier and head learn), or unfreeze them."""
    for param in model.features.parameters():
        param.requires_grad_(not head_only)


def fine_tune(model: FashionCNN, images: Tensor, labels: Tensor, *, epochs: int, head_epochs: int, lr: float,
              full_lr: float, batch_size: int, generator: torch.Generator,
              on_epoch: Callable[[int, float], None] | None = None) -> list[float]:
    """`head_epochs` epochs of the new layers alone at `lr`, then all layers at `full_lr` until `epochs`.

    Batch-norm running statistics still adapt to the new domain while the layers are frozen.
    Returns the mean training loss of each epoch; calls on_epoch(epoch, loss) after each (epochs count from 1).
    """
    losses = []
    set_trainable(model, head_only=True)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr, fused=True)
    for epoch in range(1, epochs + 1):
        if epoch == head_epochs + 1:
            set_trainable(model, head_only=False)
            optimizer = torch.optim.Adam(model.parameters(), lr=full_lr, fused=True)
        losses.append(train_epoch(model, optimizer, images, labels, batch_size, generator)["loss"])
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    return losses
