"""Seeded cases for a49's splatting rasterizer, shared by its grader and its experiment: random 2-D gaussians, and
the image and gradients a rasterizer gives them."""
import math

import torch


def random_gaussians(n: int, height: int, width: int, channels: int, dtype: torch.dtype, generator: torch.Generator):
    """(means2d, conics, colours, opacities, radii) of n random 2-D gaussians in depth order: means over the image and
    a quarter of its size beyond each edge (some off-screen), standard deviations of 0.4 to 8 pixels at any angle,
    radii of 3 of them, a tenth culled (radius 0), opacities up to 1 (some capped at 0.99)."""
    def uniform(*shape, low=0.0, high=1.0):
        return torch.rand(*shape, generator=generator, dtype=torch.float64) * (high - low) + low

    size = torch.tensor([width, height], dtype=torch.float64)
    means = uniform(n, 2, low=-0.25, high=1.25) * size
    stds = uniform(n, 2, low=math.log(0.4), high=math.log(8.0)).exp()
    angle = uniform(n, high=math.pi)
    cos, sin = angle.cos(), angle.sin()
    rotation = torch.stack([cos, -sin, sin, cos], 1).reshape(n, 2, 2)
    cov = rotation @ torch.diag_embed(stds**2) @ rotation.transpose(1, 2)
    conics = torch.linalg.inv(cov)[:, [0, 0, 1], [0, 1, 1]]
    radii = torch.ceil(3 * stds.amax(1)).int() * (uniform(n) > 0.1)
    colours, opacities = uniform(n, channels), uniform(n, low=0.05, high=1.0)
    return *(t.to(dtype) for t in (means, conics, colours, opacities)), radii.int()


def image_and_grads(rasterizer, gaussians: tuple, height: int, width: int, background: float, weights: torch.Tensor):
    """(image, d/d means2d, conics, colours, opacities) of sum(rasterizer(...) * weights)."""
    *leaves, radii = (t.clone().requires_grad_(t.is_floating_point()) for t in gaussians)
    image = rasterizer(*leaves, radii, height, width, background)
    grads = torch.autograd.grad((image * weights).sum(), leaves, allow_unused=True, materialize_grads=True)
    return image.detach(), *grads
