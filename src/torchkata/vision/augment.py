"""b04-04: data augmentation with tensor ops, on a whole batch at once, every random draw from a torch.Generator.

Each transform draws one set of parameters per image from `generator` (so the same generator state gives the same
batch, bit for bit) and applies them with indexing and arithmetic, no per-image Python loop:
- random_crop: pad by `padding` zeros and cut an H x W window at a uniform offset (a shift of up to `padding`);
- random_flip: mirror left-right with probability p;
- affine_matrices + affine: a small rotation, scaling and translation, sampled bilinearly by hand (the same
  arithmetic as F.affine_grid + F.grid_sample with align_corners=False and zero padding);
- random_erasing (Zhong et al., 2020, "Random Erasing Data Augmentation"): with probability p, set a rectangle of
  a random area fraction and aspect ratio to a value.
`Augment` chains them as a module that works in training mode only, so that torchkata.training.loop's `fit`
augments every training batch afresh and evaluates on the clean images.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def check_batch(images: Tensor) -> None:
    if images.dim() != 4:
        raise ValueError(f"expected a batch of images [N, C, H, W], got {list(images.shape)}")


def random_crop(images: Tensor, padding: int, generator: torch.Generator) -> Tensor:
    """Each image padded with `padding` zeros on every side, then an H x W window of it at an offset drawn
    uniformly from 0..2 * padding in each direction."""
    check_batch(images)
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    n, _, h, w = images.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator)
    padded = F.pad(images, (padding,) * 4)
    rows = (offsets[0, :, None] + torch.arange(h))[:, None, :, None]  # [N, 1, H, 1]
    cols = (offsets[1, :, None] + torch.arange(w))[:, None, None, :]  # [N, 1, 1, W]
    return padded[torch.arange(n)[:, None, None, None], torch.arange(images.shape[1])[None, :, None, None], rows, cols]


def random_flip(images: Tensor, generator: torch.Generator, p: float = 0.5) -> Tensor:
    """Each image mirrored left-right with probability p."""
    check_batch(images)
    flip = torch.rand(len(images), generator=generator) < p
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def affine_matrices(n: int, generator: torch.Generator, degrees: float = 10.0, translate: float = 0.1,
                    scale: tuple[float, float] = (0.9, 1.1)) -> Tensor:
    """n affine maps [n, 2, 3] from output to input coordinates (both in [-1, 1], F.affine_grid's convention):
    a rotation by an angle uniform in +-degrees, a zoom uniform in `scale`, a shift uniform in +-translate of the
    image size in each direction."""
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(degrees)
    zoom = scale[0] + torch.rand(n, generator=generator) * (scale[1] - scale[0])
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * 2 * translate  # [-1, 1] spans 2 units
    cos, sin = angle.cos() / zoom, angle.sin() / zoom  # sampling the input at 1/zoom magnifies the image
    return torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)


def affine(images: Tensor, theta: Tensor) -> Tensor:
    """Images [N, C, H, W] resampled bilinearly at theta [N, 2, 3] applied to each output pixel's centre, zero
    outside the image."""
    check_batch(images)
    n, c, h, w = images.shape
    if theta.shape != (n, 2, 3):
        raise ValueError(f"theta must be [{n}, 2, 3] for {n} images, got {list(theta.shape)}")
    # pixel centres in [-1, 1] (align_corners=False), mapped by theta, back to pixel units of the input
    xs = (torch.arange(w, dtype=theta.dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, dtype=theta.dtype) * 2 + 1) / h - 1
    points = torch.stack([xs.expand(h, w), ys[:, None].expand(h, w), torch.ones(h, w, dtype=theta.dtype)], -1)
    source = points.reshape(1, h * w, 3) @ theta.transpose(1, 2)  # [N, HW, 2]: (x, y)
    x = ((source[..., 0] + 1) * w - 1) / 2
    y = ((source[..., 1] + 1) * h - 1) / 2
    x0, y0 = x.floor(), y.floor()
    flat = images.reshape(n, c, h * w)
    out = torch.zeros(n, c, h * w, dtype=images.dtype)
    for dx in (0, 1):  # the four neighbours, each weighted by its closeness; those outside count as zero
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - (x - xi).abs()) * (1 - (y - yi).abs())
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            index = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).long()
            values = flat.gather(2, index[:, None, :].expand(n, c, h * w))
            out += values * (weight * inside)[:, None, :].to(images.dtype)
    return out.reshape(n, c, h, w)


def random_affine(images: Tensor, generator: torch.Generator, degrees: float = 10.0, translate: float = 0.1,
                  scale: tuple[float, float] = (0.9, 1.1)) -> Tensor:
    """`affine` with maps drawn by `affine_matrices`."""
    check_batch(images)
    return affine(images, affine_matrices(len(images), generator, degrees, translate, scale).to(images.dtype))


def random_erasing(images: Tensor, generator: torch.Generator, p: float = 0.5, area: tuple[float, float] = (0.02, 0.33),
                   aspect: tuple[float, float] = (0.3, 3.3), value: float = 0.0) -> Tensor:
    """With probability p per image, a rectangle set to `value`: its area a uniform fraction in `area` of the
    image's, its aspect ratio (height / width) log-uniform in `aspect`, its sides rounded and cut to the image, its
    place uniform among those that fit."""
    check_batch(images)
    n, _, h, w = images.shape
    erase = torch.rand(n, generator=generator) < p
    fraction = area[0] + torch.rand(n, generator=generator) * (area[1] - area[0])
    ratio = torch.exp(math.log(aspect[0]) + torch.rand(n, generator=generator) * math.log(aspect[1] / aspect[0]))
    height = (fraction * h * w * ratio).sqrt().round().clamp(1, h).long()
    width = (fraction * h * w / ratio).sqrt().round().clamp(1, w).long()
    top = (torch.rand(n, generator=generator) * (h - height + 1)).long()
    left = (torch.rand(n, generator=generator) * (w - width + 1)).long()
    rows, cols = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + height)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + width)[:, None, None]))
    return images.masked_fill((inside & erase[:, None, None])[:, None], value)


class Augment(nn.Module):
    """Crop with padding, flip, a small affine map and erasing (each left out when its setting is None), in training
    mode only; in eval mode the identity. Its own generator, seeded once, gives every batch its draws."""

    def __init__(self, seed: int, padding: int | None = 2, flip: float | None = 0.5, degrees: float | None = None,
                 erasing: float | None = None, erase_value: float = 0.0):
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)
        self.padding, self.flip, self.degrees, self.erasing, self.erase_value = padding, flip, degrees, erasing, erase_value

    def forward(self, images: Tensor) -> Tensor:
        if not self.training:
            return images
        g = self.generator
        if self.padding is not None:
            images = random_crop(images, self.padding, g)
        if self.flip is not None:
            images = random_flip(images, g, self.flip)
        if self.degrees is not None:
            images = random_affine(images, g, self.degrees)
        if self.erasing is not None:
            images = random_erasing(images, g, self.erasing, value=self.erase_value)
        return images
