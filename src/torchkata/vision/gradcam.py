"""b04-05: Grad-CAM (Selvaraju et al., 2017) and the model-randomisation sanity check of Adebayo et al. (2018).

Grad-CAM weighs a conv layer's feature maps A_k by how much the class score y_c grows with each of them, on
average over the map (alpha_k = mean_ij dy_c / dA_k,ij), keeps the positive part of the weighted sum and
upsamples it to the image: where the layer saw evidence for the class. Hooks on the layer catch A and its
gradient, so the model's code needs no change. The sanity check asks whether the maps depend on what the model
learnt: re-initialise its layers from the top down and measure how far the maps move (Spearman rank correlation).
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import Tensor, nn


def grad_cam(model: nn.Module, layer: nn.Module, images: Tensor, classes: Tensor | None = None) -> Tensor:
    """Grad-CAM maps [N, H, W] of `images` [N, C, H, W] at `layer` (a module of `model` that outputs [N, K, h, w]),
    for `classes` [N] (default: the predicted classes), upsampled bilinearly to H x W. Not normalised: the
    scale is the class score's. The model runs in eval mode; its parameters' .grad are left untouched."""
    if images.dim() != 4:
        raise ValueError(f"grad_cam expects images [N, C, H, W], got {list(images.shape)}")
    caught = {}
    handle = layer.register_forward_hook(lambda module, args, output: caught.setdefault("maps", output))
    try:
        model.eval()
        with torch.enable_grad():
            scores = model(images)
    finally:
        handle.remove()
    if "maps" not in caught:
        raise ValueError("grad_cam: `layer` was not called in the model's forward; pass a module of the model")
    maps = caught["maps"]
    if maps.dim() != 4:
        raise ValueError(f"grad_cam needs a layer with [N, K, h, w] outputs, got {list(maps.shape)}")
    if classes is None:
        classes = scores.argmax(dim=1)
    if classes.shape != (len(images),):
        raise ValueError(f"classes must have shape [{len(images)}], got {list(classes.shape)}")
    # each image's score depends on its own maps only (eval mode), so one backward of the sum gives every gradient
    (gradients,) = torch.autograd.grad(scores.gather(1, classes[:, None]).sum(), maps)
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * maps).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=images.shape[2:], mode="bilinear", align_corners=False).squeeze(1).detach()


def rank_correlation(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rank correlation of each pair of maps a[i], b[i] ([N, H, W] each) -> [N] (nan for a constant map)."""
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {list(a.shape)} against {list(b.shape)}")
    constant = lambda m: len(m.unique()) < 2  # noqa: E731  (no ranks to correlate: nan, without scipy's warning)
    return torch.tensor([float("nan") if constant(x) or constant(y) else
                         spearmanr(x.flatten().numpy(), y.flatten().numpy()).statistic for x, y in zip(a, b)])


def cascading_randomization(model: nn.Module, layer_of: Callable[[nn.Module], nn.Module], images: Tensor,
                            classes: Tensor, blocks: dict[str, list[str]],
                            generator: torch.Generator) -> dict[str, Tensor]:
    """Adebayo et al.'s cascade: in a copy of `model`, re-initialise the blocks one after another (in the order
    given, top first; each step keeps the ones before), a block being a list of submodule names, and compute the
    maps for the same `classes` after each step. `layer_of(model)` finds the Grad-CAM layer in a model. Returns
    {block: the rank correlations [N] of its maps with the trained model's}. `model` itself is left unchanged."""
    original = grad_cam(model, layer_of(model), images, classes)
    randomized = copy.deepcopy(model)
    result = {}
    for block, names in blocks.items():
        for name in names:
            for module in randomized.get_submodule(name).modules():
                reinitialize(module, generator)
        result[block] = rank_correlation(original, grad_cam(randomized, layer_of(randomized), images, classes))
    return result


def reinitialize(module: nn.Module, generator: torch.Generator) -> None:
    """Fresh weights from N(0, 1/fan_in) (drawn from `generator`) and zero biases for a conv or linear layer, the
    identity for a batch norm (scale 1, shift 0, running mean 0, var 1); other modules are left alone."""
    with torch.no_grad():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight.shape[1:].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) / fan_in ** 0.5)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.BatchNorm2d):
            module.reset_parameters()
