"""a49: a simplified 3-D Gaussian-splatting renderer. Write the rasterizer's kernels in csrc/splat/splat.cpp (the
checks; the CPU twin: 16 x 16 tiles, each tile's list of the gaussians whose square overlaps it, front-to-back alpha
blending with early termination, and its backward, deterministic; the dispatch of CUDA tensors to your launchers; the
registrations `torchkata::splat_rasterize`, `splat_rasterize_backward` and `splat_has_cuda`) and
csrc/splat/splat_cuda.cu (a block per tile, a thread per pixel, the tile's gaussians binned and staged in shared
memory a batch at a time; the backward adds with atomicAdd), with what both share in csrc/splat/splat.h. Then, here:
the autograd Function around them, the same rasterizer in plain PyTorch, the EWA projection and the render.

Load the built operators with `torchkata.pipeline.extensions.load("splat", library_path)` (torch.ops.torchkata).
Grade it:  torchkata check a49
"""
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor


def ops(library_path: str | None = None):
    """The operators the library registered (torch.ops.torchkata), loaded once."""
    raise NotImplementedError("a49: load the splat library")


def rasterize(means2d: Tensor, conics: Tensor, colours: Tensor, opacities: Tensor, radii: Tensor, height: int,
              width: int, background: float = 0.0, library_path: str | None = None) -> Tensor:
    """The image [C, H, W] of 2-D gaussians sorted front to back: means2d [N, 2] (x, y in pixels; pixel (i, j) has
    its centre at (j + 0.5, i + 0.5)), conics [N, 3] (a, b, c of the inverse covariance [[a, b], [b, c]]), colours
    [N, C] (1 <= C <= 4), opacities [N], radii [N] int32 (<= 0: culled); one floating dtype and device. Differentiable
    in means2d, conics, colours and opacities, by the kernel's backward (a torch.autograd.Function).

    Raises TypeError for an operand of the wrong type; the C++ side raises RuntimeError naming the op and the operand
    for the rest (shapes, dtypes, devices, sizes).
    """
    raise NotImplementedError("a49: wrap the splat kernels in an autograd Function")


def rasterize_dense(means2d: Tensor, conics: Tensor, colours: Tensor, opacities: Tensor, radii: Tensor, height: int,
                    width: int, background: float = 0.0) -> Tensor:
    """`rasterize` in plain PyTorch: every pixel against every gaussian at once ([H W, N] tensors), with the same
    tiles, order and rules; autograd gives its backward."""
    raise NotImplementedError("a49: write the rasterizer in plain PyTorch")


@dataclass
class Camera:
    """A pinhole camera looking down its +z axis, x right and y down in the image: a world point X is at
    rotation @ X + translation in the camera's frame, at pixel focal (x / z, y / z) + (width / 2, height / 2)."""
    width: int
    height: int
    focal: float
    rotation: Tensor = field(default_factory=lambda: torch.eye(3))
    translation: Tensor = field(default_factory=lambda: torch.zeros(3))


def project(means3d: Tensor, log_scales: Tensor, quats: Tensor, camera: "Camera") -> tuple[Tensor, ...]:
    """EWA splatting: 3-D gaussians (means [N, 3], log standard deviations along their axes [N, 3], rotations as
    quaternions [N, 4]) seen by `camera` -> (means2d [N, 2], conics [N, 3], depths [N], radii [N] int32). The 2-D
    covariance is J W Sigma W^T J^T + 0.3 I, with J the Jacobian of the perspective division at the mean and W the
    camera's rotation; the radius is 3 standard deviations along its major axis, 0 for gaussians nearer than 0.2."""
    raise NotImplementedError("a49: project the 3-D gaussians")


def render(means3d: Tensor, log_scales: Tensor, quats: Tensor, colours: Tensor, opacities: Tensor, camera: "Camera",
           rasterizer: Callable[..., Tensor], background: float = 0.0) -> Tensor:
    """The image [C, H, W] of 3-D gaussians (see `project`; colours [N, C], opacities [N] in [0, 1]) by `camera`:
    projected, sorted front to back (ties keep their order) and rasterized by `rasterizer` (`rasterize_dense`, or
    `rasterize` with its library_path bound)."""
    raise NotImplementedError("a49: project, sort and rasterize")
