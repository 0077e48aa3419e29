"""Every hand-written kernel of the curriculum beside the native PyTorch op it stands in for: what m3-deep-3
benchmarks, one entry a kernel. Adding a kernel is one more entry in KERNELS, and its extension one more input of m3-deep-3 in catalog.yaml (a test holds the two together).

An entry says how to make the inputs at a size (on the CPU, from the run's generator; the harness moves them to the
device), how to call ours (with its built library: `library_path=`) and the native op on them, and, where the native
op's output is not the very answer ours must give, the `expected` answer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from torchkata.extensions.add import add
from torchkata.extensions.add_constant import add_constant
from torchkata.extensions.grid_sample import grid_sample
from torchkata.extensions.knn import knn
from torchkata.extensions.layernorm_dropout import keep_mask, layernorm_dropout
from torchkata.extensions.matmul import matmul
from torchkata.extensions.nerf import composite
from torchkata.extensions.relu import relu
from torchkata.extensions.splat import rasterize, rasterize_dense
from torchkata.extensions.splat_cases import random_gaussians
from torchkata.extensions.tree_reduce import shared_tree_sum
from torchkata.extensions.warp_reduce import warp_sum
from torchkata.vision.tiny_nerf import composite_torch, random_samples


@dataclass(frozen=True)
class Kernel:
    name: str
    extension: str | None  # the catalog extension whose library ours is called with; None: ours needs none
    ours: Callable  # ours(*inputs, library_path=...) (without library_path where extension is None)
    native: Callable  # native(*inputs): the op ours replaces, called as a user calls it; this is what is timed
    make: Callable[[int, torch.Generator], tuple]  # the inputs at a size, on the CPU (tensors and plain arguments)
    size_label: str  # what a size counts, for the table and the plot
    sizes: dict[str, tuple[int, ...]]  # "smoke" (any device), "cpu" and "cuda" (default and full scales)
    expected: Callable | None = None  # the answer ours must give, where it is not native's output
    backward: bool = False  # differentiable: also checked and timed forward + backward
    tolerance: float = 1e-5  # on max |ours - expected| / max |expected|, of the answer and of each gradient
    flops: Callable[[tuple, bool], float] | None = None  # a call's FLOPs (True: with the backward); None: GB/s
    skip: dict[str, str] = field(default_factory=dict)  # device type -> why the kernel is not benchmarked there


def elements(n: int, g: torch.Generator) -> tuple:
    return (torch.randn(n, generator=g),)


def around_one(n: int, g: torch.Generator) -> tuple:
    """Values near 1: a sum far from 0, so that its relative error measures the rounding (a45)."""
    return (torch.randn(n, generator=g) + 1,)


def square_matrices(dtype: torch.dtype) -> Callable[[int, torch.Generator], tuple]:
    return lambda n, g: tuple(torch.randn(n, n, generator=g).to(dtype) for _ in range(2))


def product_flops(inputs: tuple, backward: bool) -> float:
    """2 M K N, and the backward's two more products of the same size."""
    a, b = inputs
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] * (3 if backward else 1)


K_NEAREST, POINT_DIMS = 16, 3
# the answer's distances by differences: cdist's default matmul expansion, which is what is timed, loses the small
# ones to cancellation
DIRECT = "donot_use_mm_for_euclid_dist"


def clouds(n: int, g: torch.Generator) -> tuple:
    """n query points and n reference points in the unit cube, and k."""
    return torch.rand(n, POINT_DIMS, generator=g), torch.rand(n, POINT_DIMS, generator=g), K_NEAREST


def cdist_topk(query: Tensor, reference: Tensor, k: int):
    return torch.topk(torch.cdist(query, reference), k, largest=False)


def nearest_squared_distances(query: Tensor, reference: Tensor, k: int) -> Tensor:
    return torch.topk(torch.cdist(query, reference, compute_mode=DIRECT), k, largest=False).values.square()


def distance_flops(inputs: tuple, backward: bool) -> float:
    """A difference, a product and a sum per pair of points and dimension."""
    query, reference, _ = inputs
    return 3 * query.shape[0] * reference.shape[0] * query.shape[1]


SAMPLE_BATCH, SAMPLE_CHANNELS = 8, 16


def image_and_grid(side: int, g: torch.Generator) -> tuple:
    """[8, 16, side, side] images and a grid of side x side points, some outside [-1, 1]."""
    image = torch.randn(SAMPLE_BATCH, SAMPLE_CHANNELS, side, side, generator=g)
    return image, torch.rand(SAMPLE_BATCH, side, side, 2, generator=g) * 2.2 - 1.1


def bilinear(image: Tensor, grid: Tensor) -> Tensor:
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


NORM_ROWS, DROP_P, DROP_SEED = 2048, 0.1, 1


def rows_of_width(width: int, g: torch.Generator) -> tuple:
    """x [NORM_ROWS, width], weight [width] and bias [width]."""
    return (torch.randn(NORM_ROWS, width, generator=g), torch.randn(width, generator=g),
            torch.randn(width, generator=g))


def fused_layernorm_dropout(x: Tensor, weight: Tensor, bias: Tensor, library_path: str) -> Tensor:
    return layernorm_dropout(x, weight, bias, DROP_P, DROP_SEED, library_path=library_path)


def eager_layernorm_dropout(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    return F.dropout(F.layer_norm(x, (x.shape[-1],), weight, bias), DROP_P)


@lru_cache(maxsize=None)
def kernel_mask(rows: int, width: int) -> Tensor:
    """keep_mask at the benchmark's p and seed, drawn once a shape (int64 tensor ops: a second at 4096 x 1024)."""
    return keep_mask(rows, width, DROP_P, DROP_SEED)


def layernorm_under_kernel_mask(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """The fused op's answer: F.layer_norm, then dropout under the kernel's own mask (torch's would differ)."""
    mask = kernel_mask(*x.shape).to(x.device)
    return F.layer_norm(x, (x.shape[-1],), weight, bias) * mask / (1 - DROP_P)


SPLAT_SIDE, SPLAT_CHANNELS = 64, 3


def gaussians_2d(n: int, g: torch.Generator) -> tuple:
    """n random 2-D gaussians in depth order (a49's cases) and the side of the square image they are drawn on."""
    return *random_gaussians(n, SPLAT_SIDE, SPLAT_SIDE, SPLAT_CHANNELS, torch.float32, g), SPLAT_SIDE, SPLAT_SIDE


NERF_SAMPLES = 64


def samples_along_rays(n: int, g: torch.Generator) -> tuple:
    """n rays of 64 samples each (a48's cases): densities, colours, gaps and depths, float32."""
    return tuple(random_samples(g, n, NERF_SAMPLES, 3, torch.float32, near=2.0))


def triton_matmul(a: Tensor, b: Tensor) -> Tensor:
    # imported at the first call: triton's import costs a second, and on a CPU the kernel is never called
    from torchkata.extensions.triton_matmul import matmul as triton_kernel

    return triton_kernel(a, b)


ELEMENTWISE = {"smoke": (1 << 10,), "cpu": (1 << 12, 1 << 18, 1 << 22), "cuda": (1 << 16, 1 << 22, 1 << 26)}
# on a CPU, the tiled matmul against MKL at 1024 and 2048 (the goal) is timed by a44, not here
SQUARE = {"smoke": (32,), "cpu": (256, 512), "cuda": (1024, 2048, 4096)}
INTERPRETED = ("Triton's interpreter runs the kernel on a CPU, simulating each program in Python: its time is not a "
               "kernel's speed (m4-deep-2 reports it as what it is)")

KERNELS = [
    Kernel("add_constant", "add_constant", add_constant, torch.add, lambda n, g: (*elements(n, g), 3.0), "elements",
           ELEMENTWISE, backward=True, skip={"cuda": "a41's extension has no CUDA kernel"}),
    Kernel("add", "add", add, torch.add, lambda n, g: elements(n, g) + elements(n, g), "elements", ELEMENTWISE,
           backward=True),
    Kernel("relu", "relu", relu, torch.relu, elements, "elements", ELEMENTWISE, backward=True),
    Kernel("matmul", "matmul", matmul, torch.matmul, square_matrices(torch.float32), "n (n x n @ n x n)", SQUARE,
           backward=True, flops=product_flops),
    Kernel("warp_sum", "reduce", warp_sum, torch.sum, around_one, "elements", ELEMENTWISE),
    Kernel("shared_tree_sum", "reduce", shared_tree_sum, torch.sum, around_one, "elements", ELEMENTWISE),
    Kernel("knn", "knn", knn, cdist_topk, clouds, f"n queries = n points (D={POINT_DIMS}, k={K_NEAREST})",
           {"smoke": (64,), "cpu": (1024, 4096), "cuda": (4096, 16384)}, expected=nearest_squared_distances,
           flops=distance_flops),
    Kernel("grid_sample", "grid_sample", grid_sample, bilinear, image_and_grid,
           f"H = W ({SAMPLE_BATCH} x {SAMPLE_CHANNELS} channels, an H x W grid)",
           {"smoke": (8,), "cpu": (32, 96), "cuda": (128, 512)}, backward=True),
    Kernel("layernorm_dropout", "layernorm_dropout", fused_layernorm_dropout, eager_layernorm_dropout, rows_of_width,
           f"width ({NORM_ROWS} rows, p={DROP_P})", {"smoke": (64,), "cpu": (256, 1024), "cuda": (1024, 4096)},
           expected=layernorm_under_kernel_mask, backward=True, tolerance=2e-5),
    # a49's rasterizer against the same rules in plain PyTorch (no native op draws gaussians); a49's float32 tolerance
    # of the gradients, which sum over every pixel a gaussian touches
    Kernel("splat", "splat", rasterize, rasterize_dense, gaussians_2d,
           f"gaussians ({SPLAT_SIDE} x {SPLAT_SIDE} image, {SPLAT_CHANNELS} channels)",
           {"smoke": (16,), "cpu": (32, 128), "cuda": (1024, 4096)}, backward=True, tolerance=2e-4),
    # a48's volume-rendering accumulation against the same sum in plain PyTorch; judged by its colours and their
    # gradients (sums over a ray's samples, in another order)
    Kernel("nerf_composite", "nerf", composite, composite_torch, samples_along_rays,
           f"rays ({NERF_SAMPLES} samples, 3 channels)", {"smoke": (64,), "cpu": (512, 4096), "cuda": (4096, 65536)},
           backward=True, tolerance=2e-5),
    # float16 products summed in float32 by both, each rounded to float16 once: a unit in the last place apart
    Kernel("triton_matmul", None, triton_matmul, torch.matmul, square_matrices(torch.float16), "n (n x n @ n x n)",
           SQUARE, tolerance=5e-3, flops=product_flops, skip={"cpu": INTERPRETED}),
]
