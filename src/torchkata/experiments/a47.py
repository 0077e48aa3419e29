"""a47 experiment: bilinear sampling by the hand-written kernels (the CPU twin, and the CUDA kernels where there is a
GPU) against F.grid_sample(mode="bilinear", padding_mode="zeros"): outputs and both gradients over seeded trials
(grid points beyond [-1, 1], odd sizes, one-pixel images, empty batches; align_corners True and False), the speed of
the forward and of forward + backward against torch's at the default size, and an image warped by a rotation."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from torchkata.extensions.kernel_bench import devices, relative_error
from torchkata.pipeline.bench import median_compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"trials": 3, "max_size": 12, "bench": [2, 4, 32, 32], "image": 48, "bench_seconds": 0.02,
              "repeats": 1},
    "default": {"trials": 24, "max_size": 40, "bench": [8, 16, 128, 128], "image": 160, "bench_seconds": 0.3,
                "repeats": 3},
    "full": {"trials": 100, "max_size": 80, "bench": [16, 32, 256, 256], "image": 256, "bench_seconds": 1.0,
             "repeats": 3},
}
# (N, C, H, W, Ho, Wo): one pixel, one channel, an empty batch, no channels, an empty grid, odd sizes
FIXED = [(1, 1, 1, 1, 3, 3), (2, 3, 1, 5, 2, 4), (0, 2, 3, 3, 2, 2), (2, 0, 4, 4, 3, 3), (1, 2, 5, 5, 0, 3),
         (3, 2, 7, 9, 5, 11)]


def run(ctx: RunContext) -> None:
    p, g = ctx.params, ctx.generator
    library_path = str(ctx.input("grid_sample"))
    impl = ctx.impl
    targets = devices(ctx, impl.ops(library_path).grid_sample_has_cuda())
    worst = dict.fromkeys(["max_rel_error", "float32_max_rel_error", "grad_input_max_rel_error",
                           "grad_grid_max_rel_error"], 0.0)
    random = torch.randint(1, p["max_size"] + 1, (p["trials"], 6), generator=g)
    random[:, :2] = random[:, :2] % 4 + 1  # N and C up to 4: the sizes that matter are the image's and the grid's
    cases = FIXED + [tuple(c) for c in random.tolist()]

    def ours(image, grid, mode, padding_mode, align_corners):  # F.grid_sample's signature, for sample_and_grads
        return impl.grid_sample(image, grid, align_corners, library_path)

    for trial, (n, c, h, w, ho, wo) in enumerate(cases):
        dtype = (torch.float64, torch.float32)[trial % 2]
        align_corners = trial % 4 < 2
        image = torch.randn(n, c, h, w, generator=g, dtype=dtype)
        grid = torch.rand(n, ho, wo, 2, generator=g, dtype=dtype) * 2.4 - 1.2  # some points outside the image
        weights = torch.randn(n, c, ho, wo, generator=g, dtype=dtype)
        expected = sample_and_grads(F.grid_sample, image, grid, weights, align_corners)
        for device in targets:
            found = sample_and_grads(ours, image.to(device), grid.to(device), weights.to(device), align_corners)
            errors = [relative_error(a.cpu(), b)[0] for a, b in zip(found, expected)]
            key = "max_rel_error" if dtype == torch.float64 else "float32_max_rel_error"
            for name, error in zip((key, "grad_input_max_rel_error", "grad_grid_max_rel_error"), errors):
                worst[name] = max(worst[name], error)
        ctx.log("max_rel_error_so_far", worst["max_rel_error"], trial)
    ctx.metrics.update(worst, trials=len(cases))

    ctx.bench["speed"] = {device.type: speed(ctx, impl, library_path, device) for device in targets}
    ctx.bench["ratio"] = ctx.bench["speed"]["cpu"]["forward"]["ratio"]  # ours / F.grid_sample, forward, CPU
    ctx.bench["forward_backward_ratio"] = ctx.bench["speed"]["cpu"]["forward_backward"]["ratio"]
    plot_rotation(ctx, impl.ops(library_path))


def sample_and_grads(sample, image, grid, weights, align_corners):
    """(output, d/d image, d/d grid) of sum(sample(image, grid) * weights)."""
    image, grid = image.clone().requires_grad_(), grid.clone().requires_grad_()
    out = sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)
    grads = torch.autograd.grad((out * weights).sum(), (image, grid), allow_unused=True, materialize_grads=True)
    return out.detach(), *grads


def speed(ctx: RunContext, impl, library_path: str, device: torch.device) -> dict:
    """compare(ours, F.grid_sample) for the forward and for forward + backward (both gradients), float32,
    align_corners=False, at the scale's [N, C, H, W] with a grid of H x W points: each the median of `repeats`
    comparisons, as one slow spell of a shared machine would otherwise decide the figure."""
    g = ctx.generator
    n, c, h, w = ctx.params["bench"]
    image = torch.randn(n, c, h, w, generator=g).to(device).requires_grad_()
    grid = (torch.rand(n, h, w, 2, generator=g) * 2.2 - 1.1).to(device).requires_grad_()

    def ours():
        return impl.grid_sample(image, grid, False, library_path)

    def native():
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def both(sample):
        def step():
            with torch.enable_grad():
                grads = torch.autograd.grad(sample().sum(), (image, grid))
            return synced(grads, device)
        return step

    seconds, repeats = ctx.params["bench_seconds"], ctx.params["repeats"]
    return {"forward": median_compare(lambda: synced(ours(), device), lambda: synced(native(), device), seconds,
                                      repeats),
            "forward_backward": median_compare(both(ours), both(native), seconds, repeats)}


def synced(out, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # a CUDA launch returns before the kernel ends
    return out


def checker_image(size: int) -> torch.Tensor:
    """[1, 3, size, size] in [0, 1]: a checkerboard under colour gradients and a ring, easy to see rotate."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    checker = ((x * 4).floor() + (y * 4).floor()) % 2
    ring = ((x**2 + y**2).sqrt() - 0.6).abs() < 0.08
    red, green, blue = 0.3 + 0.7 * checker * (x + 1) / 2, 0.3 + 0.7 * checker * (y + 1) / 2, ring.float()
    return torch.stack([red, green, blue]).clamp(0, 1)[None]


def plot_rotation(ctx: RunContext, ops) -> None:
    """The test image rotated by 30 degrees and zoomed out by 1.25 (corners fall outside: zeros), by our kernel and by
    F.grid_sample, and |ours - torch| on its own colour scale."""
    image = checker_image(ctx.params["image"])
    angle, zoom = math.radians(30), 1.25
    theta = torch.tensor([[[math.cos(angle) * zoom, -math.sin(angle) * zoom, 0.0],
                           [math.sin(angle) * zoom, math.cos(angle) * zoom, 0.0]]])
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    ours = ops.grid_sample(image, grid, False)
    native = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    difference = (ours - native).abs().amax(1)[0]
    ctx.metrics["rotation_max_abs_difference"] = float(difference.max())
    fig = ctx.figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 4)
    for ax, picture, title in zip(axes, (image, ours, native),
                                  ("input", "ours (rotated 30°, zoom 1.25)", "F.grid_sample")):
        ax.imshow(picture[0].permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set(title=title, xticks=[], yticks=[])
    shown = axes[3].imshow(difference.numpy(), cmap="magma")
    axes[3].set(title=f"|ours - torch|\nmax {float(difference.max()):.1e}", xticks=[], yticks=[])
    fig.colorbar(shown, ax=axes[3], fraction=0.046)
    ctx.save_figure(fig, "rotation")
