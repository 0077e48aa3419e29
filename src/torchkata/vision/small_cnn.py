"""b04-08: the small Fashion-MNIST CNN, parametrised, and three ways for it to shrink the feature map.

One block per width in `channels`, each a 3x3 convolution followed by batch norm and ReLU, the map shrunk
  - "pool":   by a 2x2 max pool right after the convolution (b04-06's block: pooling first, batch norm and ReLU
              run on a quarter of the pixels),
  - "stride": by the convolution itself, with stride 2 (it computes a quarter of the outputs: cheaper, and the
              network learns how to downsample),
  - "none":   not at all: every block runs at 28x28 and the classifier reads the full-size map.
then flatten, a hidden linear layer, ReLU, dropout and the 10-way output (with hidden=0 the output layer reads
the flattened map directly: b04-08's default, where the no-downsampling variant's hidden layer would cost as
much as its convolutions). `conv(c_in, c_out, stride)` builds each
convolution (b04-07 passes a depthwise-separable one), and `stage(c)` adds `depth` shape-keeping blocks after each
downsampling block (b04-03 passes plain and residual ones), so the three exercises share one builder.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

DOWNSAMPLING = ("pool", "stride", "none")
IMAGE_SIZE = 28


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Module:
    """A 3x3 convolution that keeps the size at stride 1 and halves it at stride 2 (rounding up); no bias: the
    batch norm after it shifts each channel anyway."""
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def block(c_in: int, c_out: int, downsample: str, conv: Callable[..., nn.Module] | None = None) -> list[nn.Module]:
    """One convolution block with its way of downsampling (see the module's docstring); conv3x3 unless `conv`."""
    if downsample not in DOWNSAMPLING:
        raise ValueError(f"downsample must be one of {DOWNSAMPLING}, got {downsample!r}")
    conv = conv or conv3x3
    pool = [nn.MaxPool2d(2)] if downsample == "pool" else []
    return [conv(c_in, c_out, 2 if downsample == "stride" else 1), *pool, nn.BatchNorm2d(c_out), nn.ReLU()]


def output_size(size: int, downsample: str) -> int:
    """The side of the map a block leaves: halved by a pool (rounding down) or a stride-2 conv (rounding up)."""
    return {"pool": size // 2, "stride": (size + 1) // 2, "none": size}[downsample]


def small_cnn(channels: list[int] | tuple[int, ...], downsample: str = "pool", hidden: int = 128,
              dropout: float = 0.25, num_classes: int = 10, conv: Callable[..., nn.Module] | None = None,
              stage: Callable[[int], nn.Module] | None = None, depth: int = 0) -> nn.Sequential:
    """The CNN for [N, 1, 28, 28] images -> [N, num_classes] logits (see the module's docstring); hidden=0: no
    hidden layer (and no dropout)."""
    if not channels:
        raise ValueError("small_cnn needs at least one width in channels")
    if depth and stage is None:
        raise ValueError(f"depth={depth} blocks per stage need a `stage` to build them")
    layers, size = [], IMAGE_SIZE
    for c_in, c_out in zip((1, *channels), channels):
        layers += block(c_in, c_out, downsample, conv)
        layers += [stage(c_out) for _ in range(depth)]
        size = output_size(size, downsample)
    features = channels[-1] * size * size
    if not hidden:
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(features, num_classes))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, num_classes))
