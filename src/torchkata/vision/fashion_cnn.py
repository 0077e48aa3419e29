"""b04-06: a small CNN for Fashion-MNIST, in the style of pytorch/examples' mnist.

Two conv blocks (conv 3x3 -> 2x2 max pool -> batch norm -> ReLU: 28 -> 14 -> 7) and a two-layer classifier.
Pooling comes straight after the convolution: max pooling commutes with the ReLU, and batch norm then runs on a
quarter of the pixels, which is most of what the first block costs besides its convolution. Training is the
shared loop (torchkata.training.loop) with a one-cycle learning rate; the experiment runs in channels_last.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

# mean and std of the Fashion-MNIST training pixels scaled to [0, 1]
MEAN, STD = 0.2860, 0.3530
IMAGE_SHAPE = (1, 28, 28)


def normalize(images: Tensor) -> Tensor:
    """uint8 images [N, 28, 28] (0..255) -> float32 [N, 1, 28, 28] with zero mean and unit std."""
    if images.dtype != torch.uint8 or images.dim() != 3:
        raise ValueError(f"expected uint8 images [N, 28, 28], got {images.dtype} {list(images.shape)}")
    return ((images.float() / 255 - MEAN) / STD).unsqueeze(1)


def conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    """conv 3x3 (no bias: batch norm's shift replaces it) -> max pool 2x2 -> batch norm -> ReLU; halves H and W."""
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.ReLU()]


class FashionCNN(nn.Module):
    def __init__(self, channels: tuple[int, int] = (32, 64), hidden: int = 128, num_classes: int = 10,
                 dropout: float = 0.25):
        super().__init__()
        self.config = {"channels": list(channels), "hidden": hidden, "num_classes": num_classes, "dropout": dropout}
        c1, c2 = channels
        self.features = nn.Sequential(*conv_block(1, c1), *conv_block(c1, c2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * 7 * 7, hidden), nn.ReLU(), nn.Dropout(dropout),
        )
        self.head = nn.Linear(hidden, num_classes)  # kept separate: transfer learning (b04-10) replaces it

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"FashionCNN expects images [N, 1, 28, 28], got {list(x.shape)}")
        return self.head(self.classifier(self.features(x)))
