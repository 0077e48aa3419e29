"""a49 experiment: the Gaussian-splatting rasterizer's kernel (the CPU twin, and the CUDA kernels where there is a GPU)
against the same rasterizer in plain PyTorch (`rasterize_dense`): the image and the four gradients over seeded trials
(sizes off the 16-pixel tile grid, one pixel, no gaussians, one gaussian, gaussians off-screen and culled, float64 and
float32); then a photograph fitted by 3-D gaussians with Adam through the kernel, with its PSNR, the PSNR of the
initial state and of the image's mean colour, and the same fit through the plain rasterizer for its first steps; and
the speed of the kernel's forward and forward + backward against the plain rasterizer's.

The photograph is scikit-learn's flower.jpg (installed with the package, read from its folder with Pillow; the
pipeline has no dataset of photographs): its centre square, averaged down."""
from __future__ import annotations

import functools
import importlib.util
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from torchkata.extensions.kernel_bench import devices, relative_error
from torchkata.extensions.splat_cases import image_and_grads, random_gaussians
from torchkata.pipeline.bench import median_compare
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"trials": 2, "max_size": 24, "max_gaussians": 24, "image": 16, "gaussians": 24, "steps": 12,
              "dense_steps": 4, "bench_seconds": 0.02, "repeats": 1},
    "default": {"trials": 20, "max_size": 48, "max_gaussians": 160, "image": 64, "gaussians": 300, "steps": 500,
                "dense_steps": 40, "bench_seconds": 0.3, "repeats": 3},
    "full": {"trials": 100, "max_size": 96, "max_gaussians": 600, "image": 128, "gaussians": 2000, "steps": 3000,
             "dense_steps": 100, "bench_seconds": 1.0, "repeats": 3},
}
# (height, width, gaussians, channels): one pixel, no gaussians, one gaussian, whole tiles, sizes off the tile grid
FIXED = [(1, 1, 1, 3), (1, 1, 0, 3), (20, 13, 0, 1), (17, 23, 1, 3), (16, 32, 12, 3), (33, 18, 40, 1), (5, 40, 25, 4)]
LEARNING_RATES = {"means3d": 0.004, "log_scales": 0.02, "quats": 0.02, "colours": 0.05, "opacities": 0.05}
GRADIENTS = ("means2d", "conics", "colours", "opacities")


def run(ctx: RunContext) -> None:
    p = ctx.params
    library_path = str(ctx.input("splat"))
    impl = ctx.impl
    kernel = functools.partial(impl.rasterize, library_path=library_path)
    targets = devices(ctx, impl.ops(library_path).splat_has_cuda())
    correctness(ctx, kernel, impl.rasterize_dense, targets)
    scene = fit_photograph(ctx, impl, kernel)
    ctx.bench["speed"] = {device.type: speed(ctx, impl, kernel, scene, device) for device in targets}
    ctx.bench["ratio"] = ctx.bench["speed"]["cpu"]["forward"]["ratio"]  # kernel / plain PyTorch, forward, CPU
    ctx.bench["forward_backward_ratio"] = ctx.bench["speed"]["cpu"]["forward_backward"]["ratio"]


def correctness(ctx: RunContext, kernel, dense, targets: list[torch.device]) -> None:
    """The kernel's image and gradients against the plain rasterizer's (autograd), as max |error| / max |plain|."""
    p, g = ctx.params, ctx.generator
    random = torch.randint(1, p["max_size"] + 1, (p["trials"], 2), generator=g)
    counts = torch.randint(0, p["max_gaussians"] + 1, (p["trials"],), generator=g)
    cases = FIXED + [(h, w, n, 3) for (h, w), n in zip(random.tolist(), counts.tolist())]
    worst = {}
    for trial, (h, w, n, c) in enumerate(cases):
        dtype = (torch.float64, torch.float32)[trial % 2]
        background = (0.0, 0.25)[trial % 4 // 2]
        gaussians = random_gaussians(n, h, w, c, dtype, g)
        weights = torch.randn(c, h, w, generator=g, dtype=dtype)
        expected = image_and_grads(dense, gaussians, h, w, background, weights)
        for device in targets:
            found = image_and_grads(kernel, [t.to(device) for t in gaussians], h, w, background, weights.to(device))
            prefix = "" if dtype == torch.float64 else "float32_"
            for name, ours, plain in zip(("image", *GRADIENTS), found, expected):
                key = prefix + ("max_rel_error" if name == "image" else f"grad_{name}_max_rel_error")
                worst[key] = max(worst.get(key, 0.0), relative_error(ours.cpu(), plain)[0])
        ctx.log("max_rel_error_so_far", worst["max_rel_error"], trial)
    ctx.metrics.update(worst, trials=len(cases))


def load_photograph(size: int) -> torch.Tensor:
    """[3, size, size] in [0, 1]: scikit-learn's flower.jpg (read from the installed package's folder, without
    importing scikit-learn), its centre square averaged down to size x size."""
    from PIL import Image

    folder = Path(importlib.util.find_spec("sklearn").submodule_search_locations[0])
    with Image.open(folder / "datasets" / "images" / "flower.jpg") as picture:
        pixels = torch.from_numpy(np.asarray(picture.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
    side = min(pixels.shape[1:])
    top, left = (pixels.shape[1] - side) // 2, (pixels.shape[2] - side) // 2
    square = pixels[:, top:top + side, left:left + side]
    return F.interpolate(square[None], size=(size, size), mode="area")[0]


def initial_scene(n: int, camera, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """n grey, half-opaque gaussians at depths 2 to 3 in front of the camera, spread over its view, each about as
    wide as the image's share per gaussian, at random rotations. Colours and opacities as logits (sigmoid)."""
    depth = 2 + torch.rand(n, 1, generator=generator)
    pixels = torch.rand(n, 2, generator=generator) * torch.tensor([camera.width, camera.height])
    centre = torch.tensor([camera.width / 2, camera.height / 2])
    means = torch.cat([(pixels - centre) * depth / camera.focal, depth], 1)
    width_px = camera.width / math.sqrt(n)
    return {"means3d": means, "log_scales": (width_px * depth / camera.focal).log().expand(n, 3).clone(),
            "quats": torch.randn(n, 4, generator=generator), "colours": torch.zeros(n, 3),
            "opacities": torch.zeros(n)}


def render_scene(impl, scene: dict, camera, rasterizer) -> torch.Tensor:
    return impl.render(scene["means3d"], scene["log_scales"], scene["quats"], scene["colours"].sigmoid(),
                       scene["opacities"].sigmoid(), camera, rasterizer)


def psnr(mse: float) -> float:
    return -10 * math.log10(mse)


def fit(impl, scene: dict, target: torch.Tensor, camera, rasterizer, steps: int):
    """Adam on the mean squared error for `steps` steps from `scene`: (fitted scene, the PSNR after 0, 1, ..., steps
    steps, and the seconds from the start at which each was measured)."""
    scene = {name: t.clone().requires_grad_() for name, t in scene.items()}
    optimizer = torch.optim.Adam([{"params": [scene[name]], "lr": lr} for name, lr in LEARNING_RATES.items()],
                                 fused=True)
    curve, seconds, start = [], [], time.perf_counter()
    for step in range(steps + 1):
        loss = F.mse_loss(render_scene(impl, scene, camera, rasterizer), target)
        curve.append(psnr(loss.item()))
        seconds.append(time.perf_counter() - start)
        if step < steps:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return {name: t.detach() for name, t in scene.items()}, curve, seconds


def fit_photograph(ctx: RunContext, impl, kernel) -> dict:
    """The photograph fitted through the kernel for `steps` steps and through the plain rasterizer for its first
    `dense_steps`, from one initial scene. Returns the fitted scene."""
    p = ctx.params
    target = load_photograph(p["image"])
    camera = impl.Camera(width=p["image"], height=p["image"], focal=float(p["image"]))
    start = initial_scene(p["gaussians"], camera, ctx.generator)
    scene, curve, seconds = fit(impl, start, target, camera, kernel, p["steps"])
    _, dense_curve, dense_seconds = fit(impl, start, target, camera, impl.rasterize_dense, p["dense_steps"])
    for step, value in enumerate(curve):
        ctx.log("psnr", value, step)
    dense_steps = p["dense_steps"]
    mean_colour = target.mean((1, 2), keepdim=True).expand_as(target)
    ctx.metrics.update(psnr=curve[-1], initial_psnr=curve[0],
                       mean_colour_psnr=psnr(F.mse_loss(mean_colour, target).item()), steps=p["steps"],
                       gaussians=p["gaussians"], image=p["image"], dense_steps=dense_steps,
                       dense_psnr=dense_curve[-1], kernel_psnr_at_dense_steps=curve[dense_steps])
    # how long each took to the PSNR the plain rasterizer reached in its steps (the kernel's run, the same
    # computation, reaches it at about the same step)
    reached = next((i for i, value in enumerate(curve) if value >= dense_curve[-1]), len(curve) - 1)
    ctx.bench["fit"] = {"kernel_s": seconds[-1], "kernel_step_s": seconds[-1] / p["steps"],
                        "dense_step_s": dense_seconds[-1] / dense_steps, "psnr_reached": dense_curve[-1],
                        "kernel_s_to_psnr": seconds[reached], "dense_s_to_psnr": dense_seconds[-1],
                        "time_to_psnr_ratio": seconds[reached] / dense_seconds[-1]}
    ctx.save_checkpoint(scene, "scene.pt")
    with torch.no_grad():
        images = {"target (flower.jpg)": target,
                  f"initial, {curve[0]:.1f} dB": render_scene(impl, start, camera, kernel),
                  f"fitted, {p['steps']} steps, {curve[-1]:.1f} dB": render_scene(impl, scene, camera, kernel)}
    plot_fit(ctx, images, curve, seconds, dense_curve, dense_seconds, ctx.metrics["mean_colour_psnr"])
    return scene


def plot_fit(ctx, images: dict, curve, seconds, dense_curve, dense_seconds, mean_colour_psnr: float) -> None:
    fig = ctx.figure(figsize=(3.2 * len(images), 3.4))
    for ax, (title, image) in zip(fig.subplots(1, len(images)), images.items()):
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set(title=title, xticks=[], yticks=[])
    ctx.save_figure(fig, "fit")
    fig = ctx.figure(figsize=(10, 3.6))
    by_step, by_time = fig.subplots(1, 2)
    by_step.plot(curve, label="kernel (CPU twin)")
    by_step.plot(dense_curve, "--", label="plain PyTorch rasterizer")
    by_time.plot(seconds, curve, label="kernel (CPU twin)")
    by_time.plot(dense_seconds, dense_curve, "--", label="plain PyTorch rasterizer")
    for ax, xlabel in ((by_step, "Adam step"), (by_time, "seconds (this run's machine)")):
        ax.axhline(mean_colour_psnr, color="grey", lw=0.8, ls=":", label="the image's mean colour")
        ax.set(xlabel=xlabel, ylabel="PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend()
    ctx.save_figure(fig, "psnr")


def speed(ctx: RunContext, impl, kernel, scene: dict, device: torch.device) -> dict:
    """The kernel against the plain rasterizer on the fitted scene's gaussians (projected and sorted, float32):
    the forward, and forward + backward (the four gradients); each the median of `repeats` comparisons."""
    size = ctx.params["image"]
    camera = impl.Camera(width=size, height=size, focal=float(size))
    with torch.no_grad():
        means2d, conics, depths, radii = impl.project(scene["means3d"], scene["log_scales"], scene["quats"], camera)
        order = torch.argsort(depths, stable=True)
        leaves = [t[order].to(device).requires_grad_() for t in (means2d, conics, scene["colours"].sigmoid(),
                                                                 scene["opacities"].sigmoid())]
    radii = radii[order].to(device)

    def forward(rasterizer):
        return lambda: synced(rasterizer(*leaves, radii, size, size), device)

    def both(rasterizer):
        def step():
            with torch.enable_grad():
                return synced(torch.autograd.grad(rasterizer(*leaves, radii, size, size).sum(), leaves), device)
        return step

    seconds, repeats = ctx.params["bench_seconds"], ctx.params["repeats"]
    return {"forward": median_compare(forward(kernel), forward(impl.rasterize_dense), seconds, repeats),
            "forward_backward": median_compare(both(kernel), both(impl.rasterize_dense), seconds, repeats)}


def synced(out, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # a CUDA launch returns before the kernel ends
    return out
