"""A tiny NeRF and the synthetic scene it learns (a48): rays from pinhole cameras on a circle, the volume rendering
in plain PyTorch (what a48's kernels compute, for the grader and as the speed baseline), a positional encoding and a
small MLP, and a scene of coloured spheres rendered analytically (ray-sphere intersection, Lambertian shading): a
stand-in for a captured scene, so that held-out views have an exact ground truth."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from torchkata.pipeline.numerics import sqrt

BACKGROUND = 1.0  # white: what a ray that hits nothing shows, composited behind the field


def random_samples(g: torch.Generator, rays: int, count: int, channels: int, dtype: torch.dtype,
                   near: float) -> list[Tensor]:
    """What compositing takes, random: sigma [R, S] (about a fifth 0, the rest up to ~10), rgb [R, S, C], deltas and
    t [R, S] increasing from `near` (the graders' and benchmarks' cases)."""
    sigma = torch.nn.functional.relu(torch.randn(rays, count, generator=g, dtype=dtype) + 0.8) * 3
    rgb = torch.rand(rays, count, channels, generator=g, dtype=dtype)
    deltas = torch.rand(rays, count, generator=g, dtype=dtype) * 0.2 + 0.01
    return [sigma, rgb, deltas, near + deltas.cumsum(1)]


def march_torch(origins: Tensor, directions: Tensor, jitter: Tensor, near: float,
                far: float) -> tuple[Tensor, Tensor, Tensor]:
    """(points [R, S, 3], t [R, S], deltas [R, S]): sample i of a ray at t = near + (i + jitter) (far - near) / S,
    deltas the gaps to the next sample and the last one's to far."""
    samples = jitter.shape[1]
    step = (far - near) / max(samples, 1)  # no samples: any step, nothing is placed
    t = near + (torch.arange(samples, dtype=jitter.dtype, device=jitter.device) + jitter) * step
    deltas = torch.cat([t[:, 1:], torch.full_like(t[:, :1], far)], 1) - t
    return origins[:, None] + t[..., None] * directions[:, None], t, deltas


def composite_torch(sigma: Tensor, rgb: Tensor, deltas: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(colour [R, C], depth [R], opacity [R]): alpha_i = 1 - exp(-sigma_i delta_i), T_i = prod_{j<i} (1 - alpha_j)
    (an exclusive cumulative product), w_i = T_i alpha_i; sums of w_i c_i, w_i t_i and w_i."""
    optical_depth = sigma * deltas
    alpha = -torch.expm1(-optical_depth)
    ones = torch.ones_like(optical_depth[:, :1])
    transmittance = torch.cat([ones, torch.exp(-optical_depth)], 1).cumprod(1)[:, :-1]
    weights = transmittance * alpha
    return (weights[..., None] * rgb).sum(1), (weights * t).sum(1), weights.sum(1)


# --- cameras and the scene ------------------------------------------------------------------------------------

def camera_rays(azimuth: float, elevation: float, distance: float, size: int,
                fov_degrees: float) -> tuple[Tensor, Tensor]:
    """(origins, directions) [size * size, 3] float32, unit directions through the pixel centres, row by row, of a
    pinhole camera at (azimuth, elevation) in radians on a sphere of `distance` around the origin, looking at it
    (z is up)."""
    eye = distance * torch.tensor([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                                   math.sin(elevation)], dtype=torch.float64)
    forward = -eye / eye.norm()
    right = torch.linalg.cross(forward, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    right = right / right.norm()
    up = torch.linalg.cross(right, forward)
    half = math.tan(math.radians(fov_degrees) / 2)
    pixels = (torch.arange(size, dtype=torch.float64) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    y, x = torch.meshgrid(-pixels * half, pixels * half, indexing="ij")  # row 0 at the top
    directions = forward + x[..., None] * right + y[..., None] * up
    directions = directions / directions.norm(dim=-1, keepdim=True)
    return eye.expand(size * size, 3).float(), directions.reshape(-1, 3).float()


# centre (x, y, z), radius, colour (r, g, b): three spheres in a row, a small one on top
SPHERES = [((0.0, 0.0, 0.0), 0.55, (0.85, 0.2, 0.15)), ((0.0, 0.85, -0.1), 0.35, (0.15, 0.65, 0.25)),
           ((0.0, -0.8, 0.1), 0.4, (0.2, 0.3, 0.9)), ((0.45, 0.2, 0.5), 0.22, (0.95, 0.8, 0.1))]
LIGHT = (0.4, 0.3, 0.85)  # direction towards the light (normalised in `render_spheres`)


def render_spheres(origins: Tensor, directions: Tensor) -> Tensor:
    """[R, 3] in [0, 1]: the colour of the nearest sphere each ray (unit directions) hits, Lambertian-shaded (ambient
    0.35 plus 0.65 cos of the angle to the light; the shading depends on the surface point alone, not on the view),
    or the background."""
    light = torch.tensor(LIGHT) / math.hypot(*LIGHT)
    nearest = torch.full((len(origins),), math.inf)
    colour = torch.full((len(origins), 3), BACKGROUND)
    for centre, radius, albedo in SPHERES:
        to_centre = origins - torch.tensor(centre)
        b = (to_centre * directions).sum(1)  # |d| = 1: t^2 + 2 b t + c = 0
        c = (to_centre * to_centre).sum(1) - radius**2
        disc = b * b - c
        hit_t = -b - sqrt(disc.clamp(min=0))  # numerics.sqrt: the same bits on every CPU model
        hit = (disc > 0) & (hit_t > 0) & (hit_t < nearest)
        normal = (to_centre + hit_t[:, None] * directions) / radius
        shade = 0.35 + 0.65 * (normal @ light).clamp(min=0)
        colour = torch.where(hit[:, None], shade[:, None] * torch.tensor(albedo), colour)
        nearest = torch.where(hit, hit_t, nearest)
    return colour


# --- the field ------------------------------------------------------------------------------------------------

def positional_encoding(x: Tensor, frequencies: int) -> Tensor:
    """[..., D] -> [..., D (1 + 2 frequencies)]: x, then sin and cos of 2^k pi x for k < frequencies, so that an
    MLP, which is smooth in its input, can fit detail finer than the scene."""
    scales = (2.0 ** torch.arange(frequencies, dtype=x.dtype, device=x.device)) * math.pi
    angles = (x[..., None, :] * scales[:, None]).flatten(-2)
    return torch.cat([x, angles.sin(), angles.cos()], -1)


class TinyNeRF(nn.Module):
    """A point's density and colour: positional encoding, then an MLP of `depth` hidden layers. No view direction:
    the scene's shading does not depend on it."""

    def __init__(self, frequencies: int = 6, width: int = 64, depth: int = 3):
        super().__init__()
        self.frequencies = frequencies
        layers, width_in = [], 3 * (1 + 2 * frequencies)
        for _ in range(depth):
            layers += [nn.Linear(width_in, width), nn.ReLU()]
            width_in = width
        self.mlp = nn.Sequential(*layers, nn.Linear(width, 4))

    def forward(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """(sigma [...] >= 0, rgb [..., 3] in (0, 1)) at points [..., 3]."""
        out = self.mlp(positional_encoding(points, self.frequencies))
        return nn.functional.softplus(out[..., 3] - 1), torch.sigmoid(out[..., :3])  # -1: start mostly empty


def render(model: TinyNeRF, origins: Tensor, directions: Tensor, jitter: Tensor, near: float, far: float, march,
           composite) -> tuple[Tensor, Tensor, Tensor]:
    """(colour [R, 3] in front of the white background, depth [R], opacity [R]) of the field along the rays, with
    `march` and `composite` (a48's kernels, or march_torch and composite_torch)."""
    points, t, deltas = march(origins, directions, jitter, near, far)
    sigma, rgb = model(points)
    colour, depth, opacity = composite(sigma, rgb, deltas, t)
    return colour + (1 - opacity[:, None]) * BACKGROUND, depth, opacity


def psnr(predicted: Tensor, target: Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1]: -10 log10(mean squared error)."""
    return -10 * math.log10(float(((predicted - target) ** 2).mean()))
