"""a48: the kernels of a tiny NeRF (csrc/nerf: the per-ray code in volume_render.h, run by the CPU twin and by the
CUDA kernels), registered as the operators `torch.ops.torchkata.nerf_march`, `nerf_composite` and
`nerf_composite_backward`; the compositing is wrapped as an autograd Function.

- `march`: stratified samples along rays, R rays x S samples: their points, depths t and the gaps between them.
- `composite`: volume-rendering accumulation of each ray's samples, front to back: alpha_i = 1 - exp(-sigma_i
  delta_i), transmittance T_i = prod_{j<i} (1 - alpha_j), weights w_i = T_i alpha_i, and the ray's colour
  sum w_i c_i, depth sum w_i t_i and opacity sum w_i; differentiable in sigma, rgb, deltas and t.
The same in plain PyTorch, which the grader compares against, is torchkata.vision.tiny_nerf.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from torchkata.pipeline import extensions


@lru_cache(maxsize=None)
def ops(library_path: str | None = None):
    return extensions.load("nerf", library_path)


def march(origins: Tensor, directions: Tensor, jitter: Tensor, near: float, far: float,
          library_path: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(points [R, S, 3], t [R, S], deltas [R, S]) of R rays (origins and directions [R, 3]) with S samples each,
    jitter [R, S] in [0, 1): sample i sits at t = near + (i + jitter) (far - near) / S of its ray, at
    origin + t direction; deltas are the gaps to the next sample, the last one's to far. Not differentiable (rays are
    data). One floating dtype (float32 or float64) and device, any strides.

    Raises TypeError when an operand is not a Tensor or near/far not a number; the C++ side raises RuntimeError
    naming the op and the operand for the rest (shapes, dtypes, devices, near >= far).
    """
    for name, value in (("origins", origins), ("directions", directions), ("jitter", jitter)):
        if not isinstance(value, Tensor):
            raise TypeError(f"nerf_march: {name} must be a Tensor, got {type(value).__name__}")
    for name, value in (("near", near), ("far", far)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"nerf_march: {name} must be a number, got {type(value).__name__}")
    return ops(library_path).nerf_march(origins, directions, jitter, float(near), float(far))


class Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sigma: Tensor, rgb: Tensor, deltas: Tensor, t: Tensor, lib):
        ctx.save_for_backward(sigma, rgb, deltas, t)
        ctx.lib = lib
        return lib.nerf_composite(sigma, rgb, deltas, t)

    @staticmethod
    def backward(ctx, grad_colour: Tensor, grad_depth: Tensor, grad_opacity: Tensor):
        # the kernel recomputes the weights from the inputs instead of saving them: R x S floats less to keep
        grads = ctx.lib.nerf_composite_backward(grad_colour, grad_depth, grad_opacity, *ctx.saved_tensors)
        return *grads, None  # nothing for the library handle


def composite(sigma: Tensor, rgb: Tensor, deltas: Tensor, t: Tensor,
              library_path: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(colour [R, C], depth [R], opacity [R]) of R rays from their S samples: densities sigma [R, S] (>= 0),
    colours rgb [R, S, C], gaps deltas [R, S] and depths t [R, S], composited front to back. Differentiable in all
    four. One floating dtype (float32 or float64) and device, any strides; R, S or C may be 0 (no samples: a ray of
    colour, depth and opacity 0).

    Raises TypeError when an operand is not a Tensor; the C++ side raises RuntimeError naming the op and the operand
    for the rest (shapes, dtypes, devices).
    """
    for name, value in (("sigma", sigma), ("rgb", rgb), ("deltas", deltas), ("t", t)):
        if not isinstance(value, Tensor):
            raise TypeError(f"nerf_composite: {name} must be a Tensor, got {type(value).__name__}")
    return Composite.apply(sigma, rgb, deltas, t, ops(library_path))
