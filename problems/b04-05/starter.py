"""b04-05: Grad-CAM and the model-randomisation sanity check. Fill in every body; keep the signatures.

Grade it:  torchkata check b04-05
Run it:    snakemake --cores 2 results/b04-05/starter-default/runs/seed-0/metrics.json
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn


def grad_cam(model: nn.Module, layer: nn.Module, images: Tensor, classes: Tensor | None = None) -> Tensor:
    """Grad-CAM maps [N, H, W] of `images` [N, C, H, W] at `layer` (a module of `model` whose output is
    [N, K, h, w]) for `classes` [N] (default: the predicted ones): ReLU(sum_k alpha_k A_k) with alpha_k the mean
    over the map of d score_c / d A_k, upsampled bilinearly (align_corners=False) to H x W, detached, not
    normalised. Runs the model in eval mode; leaves no hook behind and no .grad on the parameters.
    ValueError (naming what is wrong: the shape, `layer`, `classes`) for images that are not 4-d, a layer the
    forward never calls, a layer output that is not 4-d, or classes of the wrong shape."""
    raise NotImplementedError("b04-05: grad_cam")


def rank_correlation(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rank correlation of each pair of maps a[i], b[i] ([N, H, W] each) -> [N]; nan where a map is
    constant. ValueError naming the shapes if they differ."""
    raise NotImplementedError("b04-05: rank_correlation")


def cascading_randomization(model: nn.Module, layer_of: Callable[[nn.Module], nn.Module], images: Tensor,
                            classes: Tensor, blocks: dict[str, list[str]],
                            generator: torch.Generator) -> dict[str, Tensor]:
    """In a copy of `model`, re-initialise the blocks (lists of submodule names) one after another, in order and
    cumulatively, with `reinitialize`; after each, the rank correlations [N] of the copy's maps (at
    layer_of(copy), for `classes`) with the trained model's. {block: correlations}. `model` stays unchanged."""
    raise NotImplementedError("b04-05: cascading_randomization")


def reinitialize(module: nn.Module, generator: torch.Generator) -> None:
    """Conv2d / Linear: weights from N(0, 1 / fan_in) drawn from `generator`, biases zero. BatchNorm2d: scale 1,
    shift 0, running mean 0, running variance 1. Anything else: left alone."""
    raise NotImplementedError("b04-05: reinitialize")
