"""a48: the kernels of a tiny NeRF. Write them in csrc/nerf/: the per-sample march and the per-ray compositing,
forward and backward, once for both halves (volume_render.h); the CPU loops over rays, the checks and the
registrations `torchkata::nerf_march`, `nerf_composite`, `nerf_composite_backward` and `nerf_has_cuda` (nerf.cpp);
the CUDA kernels, one thread a sample for the march and one a ray for the compositing (nerf_cuda.cu). Then wrap them
here, the compositing as an autograd Function.

Load the built operators with `torchkata.pipeline.extensions.load("nerf", library_path)` (torch.ops.torchkata).
Grade it:  torchkata check a48
"""
from __future__ import annotations

from torch import Tensor


def ops(library_path: str | None = None):
    """The operators the library registered (torch.ops.torchkata), loaded once."""
    raise NotImplementedError("a48: load the nerf library")


def march(origins: Tensor, directions: Tensor, jitter: Tensor, near: float, far: float,
          library_path: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(points [R, S, 3], t [R, S], deltas [R, S]) of R rays (origins and directions [R, 3]) with S samples each,
    jitter [R, S] in [0, 1): sample i sits at t = near + (i + jitter) (far - near) / S of its ray, at
    origin + t direction; deltas are the gaps to the next sample, the last one's to far. Not differentiable (rays are
    data). One floating dtype (float32 or float64) and device, any strides.

    Raises TypeError when an operand is not a Tensor or near/far not a number; the C++ side raises RuntimeError
    naming the op and the operand for the rest (shapes, dtypes, devices, near >= far).
    """
    raise NotImplementedError("a48: call your nerf_march operator")


def composite(sigma: Tensor, rgb: Tensor, deltas: Tensor, t: Tensor,
              library_path: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(colour [R, C], depth [R], opacity [R]) of R rays from their S samples: densities sigma [R, S] (>= 0),
    colours rgb [R, S, C], gaps deltas [R, S] and depths t [R, S], composited front to back. Differentiable in all
    four. One floating dtype (float32 or float64) and device, any strides; R, S or C may be 0 (no samples: a ray of
    colour, depth and opacity 0).

    Raises TypeError when an operand is not a Tensor; the C++ side raises RuntimeError naming the op and the operand
    for the rest (shapes, dtypes, devices).
    """
    raise NotImplementedError("a48: wrap your compositing kernels in an autograd Function")
