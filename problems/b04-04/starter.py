"""b04-04: data augmentation with tensor ops (no torchvision), deterministic under a seeded torch.Generator.
Fill in every body; keep the signatures. Every function takes a batch [N, C, H, W], draws one set of parameters
per image from `generator` (nothing from torch's global generator), and works on the whole batch at once.
ValueError naming "[N, C, H, W]" and the given shape for anything that is not 4-d.

Grade it:  torchkata check b04-04
Run it:    snakemake --cores 2 results/b04-04/starter-default/runs/seed-0/metrics.json
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def random_crop(images: Tensor, padding: int, generator: torch.Generator) -> Tensor:
    """Each image padded with `padding` zeros on every side, then an H x W window of it at an offset drawn
    uniformly from 0..2 * padding, rows and columns independently. ValueError naming `padding` if negative."""
    raise NotImplementedError


def random_flip(images: Tensor, generator: torch.Generator, p: float = 0.5) -> Tensor:
    """Each image mirrored left-right (the last dim) with probability p."""
    raise NotImplementedError


def affine_matrices(n: int, generator: torch.Generator, degrees: float = 10.0, translate: float = 0.1,
                    scale: tuple[float, float] = (0.9, 1.1)) -> Tensor:
    """n maps [n, 2, 3] from output to input coordinates, both in [-1, 1] as in F.affine_grid: rotation by an angle
    uniform in +-degrees, zoom z uniform in `scale` (the linear part is the rotation divided by z, so the image
    grows by z), shift uniform in +-translate of the image size in x and y independently (+-2 * translate in
    [-1, 1] units)."""
    raise NotImplementedError


def affine(images: Tensor, theta: Tensor) -> Tensor:
    """Each image resampled bilinearly at theta [N, 2, 3] applied to its output pixels' centres, zero outside the
    image: what F.affine_grid + F.grid_sample (align_corners=False, zero padding) give, written with indexing and
    arithmetic. ValueError "theta must be [N, 2, 3] ..." for another shape."""
    raise NotImplementedError


def random_affine(images: Tensor, generator: torch.Generator, degrees: float = 10.0, translate: float = 0.1,
                  scale: tuple[float, float] = (0.9, 1.1)) -> Tensor:
    """affine(images, affine_matrices(N, generator, ...)) in the images' dtype."""
    raise NotImplementedError


def random_erasing(images: Tensor, generator: torch.Generator, p: float = 0.5, area: tuple[float, float] = (0.02, 0.33),
                   aspect: tuple[float, float] = (0.3, 3.3), value: float = 0.0) -> Tensor:
    """With probability p per image, one rectangle (the same in every channel) set to `value`: area a uniform
    fraction in `area` of H * W, aspect ratio height / width log-uniform in `aspect`, sides rounded to whole pixels
    and cut to the image, position uniform among those where it fits. Every other pixel untouched."""
    raise NotImplementedError


class Augment(nn.Module):
    """In training mode: random_crop(padding), random_flip(flip), random_affine(degrees), random_erasing(erasing,
    value=erase_value), in that order, each skipped when its setting is None, all drawing from one generator
    seeded with `seed` at construction (each call draws afresh). In eval mode: the input itself."""

    def __init__(self, seed: int, padding: int | None = 2, flip: float | None = 0.5, degrees: float | None = None,
                 erasing: float | None = None, erase_value: float = 0.0):
        super().__init__()
        raise NotImplementedError

    def forward(self, images: Tensor) -> Tensor:
        raise NotImplementedError
