"""a49: a simplified 3-D Gaussian-splatting renderer. The projection of the 3-D gaussians to 2-D (EWA splatting) and
their depth sort are torch (autograd differentiates them); the rasterizer, binning into 16 x 16 tiles and front-to-back
alpha blending with early termination, forward and backward, is the hand-written kernel (csrc/splat: the CPU twin and
the CUDA kernels), registered as `torch.ops.torchkata.splat_rasterize` and `splat_rasterize_backward` and wrapped as
an autograd Function. `rasterize_dense` is the same rasterizer in plain PyTorch, every pixel against every gaussian:
the oracle for the kernel's image and gradients, and the baseline it is timed against.

The rules both rasterizers follow (csrc/splat/splat.h), for a pixel of centre p and gaussian i (in depth order):
    alpha_i = min(0.99, opacity_i exp(-(p - mean_i)^T conic_i (p - mean_i) / 2)), skipped below 1/255 and outside
              the tiles its square (mean_i +- radius_i) overlaps (radius <= 0: culled);
    colour  = sum_i colour_i alpha_i T_i + T_end background,  T_i = prod_{j < i} (1 - alpha_j),
              stopping before the gaussian that would take T below 1e-4.
"""
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from torchkata.pipeline import extensions
from torchkata.pipeline.numerics import sqrt

TILE = 16
MIN_ALPHA, MAX_ALPHA, MIN_TRANSMITTANCE = 1 / 255, 0.99, 1e-4
NEAR = 0.2  # gaussians closer to the camera than this (or behind it) are culled
DILATION = 0.3  # added to the 2-D covariance: every gaussian covers at least about a pixel, and its det stays > 0


@lru_cache(maxsize=None)
def ops(library_path: str | None = None):
    return extensions.load("splat", library_path)


class Rasterize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, colours, opacities, radii, height, width, background, lib):
        image, contributors = lib.splat_rasterize(means2d, conics, colours, opacities, radii, height, width, background)
        ctx.save_for_backward(image, contributors, means2d, conics, colours, opacities, radii)
        ctx.lib = lib
        return image

    @staticmethod
    def backward(ctx, grad_image):
        image, contributors, *gaussians = ctx.saved_tensors
        grads = ctx.lib.splat_rasterize_backward(grad_image, image, contributors, *gaussians)
        return *grads, None, None, None, None, None  # radii, height, width, background and the library: constants


def check_arguments(op: str, tensors: dict, height, width, background) -> None:
    """TypeError naming `op` and the argument where a tensor, a size or the background is of the wrong type."""
    for name, t in tensors.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    for name, size in (("height", height), ("width", width)):
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"{op}: {name} must be an int, got {type(size).__name__}")
    if isinstance(background, bool) or not isinstance(background, (int, float)):
        raise TypeError(f"{op}: background must be a float, got {type(background).__name__}")


def rasterize(means2d: Tensor, conics: Tensor, colours: Tensor, opacities: Tensor, radii: Tensor, height: int,
              width: int, background: float = 0.0, library_path: str | None = None) -> Tensor:
    """The image [C, H, W] of 2-D gaussians sorted front to back: means2d [N, 2] (x, y in pixels; pixel (i, j) has
    its centre at (j + 0.5, i + 0.5)), conics [N, 3] (a, b, c of the inverse covariance [[a, b], [b, c]]), colours
    [N, C] (1 <= C <= 4), opacities [N], radii [N] int32 (<= 0: culled); one floating dtype and device. Differentiable
    in means2d, conics, colours and opacities, by the kernel's backward.

    Raises TypeError for an operand of the wrong type; the C++ side raises RuntimeError naming the op and the operand
    for the rest (shapes, dtypes, devices, sizes).
    """
    check_arguments("rasterize", {"means2d": means2d, "conics": conics, "colours": colours, "opacities": opacities,
                                   "radii": radii}, height, width, background)
    return Rasterize.apply(means2d, conics, colours, opacities, radii, height, width, float(background),
                           ops(library_path))


def rasterize_dense(means2d: Tensor, conics: Tensor, colours: Tensor, opacities: Tensor, radii: Tensor, height: int,
                    width: int, background: float = 0.0) -> Tensor:
    """`rasterize` in plain PyTorch: every pixel against every gaussian at once ([H W, N] tensors), with the same
    tiles, order and rules; autograd gives its backward."""
    check_arguments("rasterize_dense", {"means2d": means2d, "conics": conics, "colours": colours,
                                        "opacities": opacities, "radii": radii}, height, width, background)
    ys, xs = torch.meshgrid(torch.arange(height, device=means2d.device), torch.arange(width, device=means2d.device),
                            indexing="ij")
    pixels = torch.stack([xs, ys], -1).reshape(-1, 1, 2)  # [P, 1, 2] (x, y) against [N, 2]: [P, N, 2]
    corner = pixels // TILE * TILE  # of each pixel's tile
    reach = radii[:, None]
    in_tile = (radii > 0) & ((means2d + reach >= corner) & (means2d - reach < corner + TILE)).all(-1)
    dx, dy = (pixels.to(means2d.dtype) + 0.5 - means2d).unbind(-1)
    a, b, c = conics.unbind(1)
    alpha = (opacities * torch.exp(-0.5 * (a * dx * dx + c * dy * dy) - b * dx * dy)).clamp(max=MAX_ALPHA)
    alpha = torch.where(in_tile & (alpha >= MIN_ALPHA), alpha, 0)
    with torch.no_grad():  # where the light runs out: that gaussian and all behind it are left out
        stopped = torch.cumprod(1 - alpha, 1) < MIN_TRANSMITTANCE
    alpha = alpha.masked_fill(stopped, 0)
    transmittance = F.pad(torch.cumprod(1 - alpha, 1), (1, 0), value=1)  # [P, N + 1]: before each, and at the end
    image = (alpha * transmittance[:, :-1]) @ colours + transmittance[:, -1:] * background
    return image.T.reshape(colours.shape[1], height, width)


@dataclass
class Camera:
    """A pinhole camera looking down its +z axis, x right and y down in the image: a world point X is at
    rotation @ X + translation in the camera's frame, at pixel focal (x / z, y / z) + (width / 2, height / 2)."""
    width: int
    height: int
    focal: float
    rotation: Tensor = field(default_factory=lambda: torch.eye(3))
    translation: Tensor = field(default_factory=lambda: torch.zeros(3))


def rotation_matrices(quats: Tensor) -> Tensor:
    """[N, 3, 3] rotations of quaternions [N, 4] (w, x, y, z), normalised first: I + 2 (w K + K K), with K the
    cross-product matrix of (x, y, z) (K u = (x, y, z) x u)."""
    w, axis = F.normalize(quats, dim=1).split([1, 3], dim=1)
    identity = torch.eye(3, dtype=quats.dtype, device=quats.device)
    cross = torch.linalg.cross(axis[:, None, :], identity[None], dim=-1).transpose(1, 2)  # columns: axis x e_i
    return identity + 2 * (w[:, :, None] * cross + cross @ cross)


def project(means3d: Tensor, log_scales: Tensor, quats: Tensor, camera: "Camera") -> tuple[Tensor, ...]:
    """EWA splatting: 3-D gaussians (means [N, 3], log standard deviations along their axes [N, 3], rotations as
    quaternions [N, 4]) seen by `camera` -> (means2d [N, 2], conics [N, 3], depths [N], radii [N] int32). The 2-D
    covariance is J W Sigma W^T J^T + 0.3 I, with J the Jacobian of the perspective division at the mean and W the
    camera's rotation; the radius is 3 standard deviations along its major axis, 0 for gaussians nearer than NEAR."""
    rotation, translation = camera.rotation.to(means3d), camera.translation.to(means3d)
    x, y, depth = (means3d @ rotation.T + translation).unbind(1)
    visible = depth > NEAR
    z = torch.where(visible, depth, 1.0)  # culled ones divide by 1: finite values, and finite (zero) gradients
    u, v = x / z, y / z
    centre = torch.tensor([camera.width / 2, camera.height / 2], dtype=means3d.dtype, device=means3d.device)
    means2d = camera.focal * torch.stack([u, v], 1) + centre
    one, zero = torch.ones_like(z), torch.zeros_like(z)
    jacobian = (camera.focal / z)[:, None, None] * torch.stack([one, zero, -u, zero, one, -v], 1).reshape(-1, 2, 3)
    axes = rotation @ rotation_matrices(quats) * log_scales.exp()[:, None, :]  # W R S: columns are the scaled axes
    projected = jacobian @ axes
    cov = projected @ projected.transpose(1, 2) + DILATION * torch.eye(2, dtype=means3d.dtype, device=means3d.device)
    conics = torch.linalg.inv(cov)[:, [0, 0, 1], [0, 1, 1]]
    with torch.no_grad():
        major = torch.linalg.eigvalsh(cov)[:, 1]  # the larger eigenvalue: the variance along the major axis
        radii = torch.where(visible, torch.ceil(3 * sqrt(major)), 0).int()
    return means2d, conics, depth, radii


def render(means3d: Tensor, log_scales: Tensor, quats: Tensor, colours: Tensor, opacities: Tensor, camera: "Camera",
           rasterizer: Callable[..., Tensor], background: float = 0.0) -> Tensor:
    """The image [C, H, W] of 3-D gaussians (see `project`; colours [N, C], opacities [N] in [0, 1]) by `camera`:
    projected, sorted front to back (ties keep their order) and rasterized by `rasterizer` (`rasterize_dense`, or
    `rasterize` with its library_path bound)."""
    means2d, conics, depths, radii = project(means3d, log_scales, quats, camera)
    order = torch.argsort(depths, stable=True)
    return rasterizer(means2d[order], conics[order], colours[order], opacities[order], radii[order], camera.height,
                      camera.width, background)
