"""a48 experiment: the tiny NeRF's kernels (the march and the compositing; the CPU twin, and the CUDA kernels where
there is a GPU) against the same volume rendering in plain PyTorch, over seeded trials (outputs and the four
gradients against a float64 reference), their speed against the plain-PyTorch compositing, and a tiny NeRF that
renders through them, fitted to a synthetic scene of coloured spheres (a stand-in for a captured scene), with the
PSNR on held-out views against predicting the mean colour, and the same model rendered through the plain-PyTorch
path."""
from __future__ import annotations

import math

import torch

from torchkata.extensions.kernel_bench import devices, relative_error
from torchkata.pipeline.bench import median_compare
from torchkata.pipeline.runner import RunContext
from torchkata.vision import tiny_nerf

SCALES = {
    "smoke": {"trials": 3, "max_rays": 40, "max_samples": 12, "bench": [512, 32], "bench_seconds": 0.02, "repeats": 1,
              "image": 12, "views": 8, "heldout": 2, "samples": 12, "width": 32, "steps": 100, "batch": 256,
              "lr": 1e-2, "eval_every": 50},
    "default": {"trials": 24, "max_rays": 700, "max_samples": 90, "bench": [4096, 64], "bench_seconds": 0.2,
                "repeats": 3, "image": 32, "views": 16, "heldout": 4, "samples": 24, "width": 64, "steps": 800,
                "batch": 512, "lr": 1e-2, "eval_every": 100},
    "full": {"trials": 100, "max_rays": 3000, "max_samples": 200, "bench": [16384, 128], "bench_seconds": 1.0,
             "repeats": 3, "image": 64, "views": 32, "heldout": 8, "samples": 64, "width": 128, "steps": 8000,
             "batch": 1024, "lr": 5e-3, "eval_every": 400},
}
# (rays, samples, channels): one ray of one sample, no rays, no samples, no channels, one ray of many samples
FIXED = [(1, 1, 3), (0, 5, 3), (4, 0, 3), (3, 6, 0), (1, 64, 3), (257, 33, 3)]
NEAR, FAR = 2.0, 6.0
# the cameras: on a circle around the scene, 25 degrees above it, looking at its centre
DISTANCE, ELEVATION, FOV_DEGREES = 3.5, math.radians(25), 40.0
SCENE_NEAR, SCENE_FAR = DISTANCE - 1.8, DISTANCE + 1.8  # the spheres lie within 1.8 of the centre


def run(ctx: RunContext) -> None:
    library_path = str(ctx.input("nerf"))
    impl = ctx.impl
    targets = devices(ctx, impl.ops(library_path).nerf_has_cuda())
    check_against_torch(ctx, impl, library_path, targets)
    ctx.bench["speed"] = {device.type: speed(ctx, impl, library_path, device) for device in targets}
    ctx.bench["ratio"] = ctx.bench["speed"]["cpu"]["forward"]["ratio"]  # kernel / plain PyTorch, forward, CPU
    ctx.bench["forward_backward_ratio"] = ctx.bench["speed"]["cpu"]["forward_backward"]["ratio"]
    fit_scene(ctx, impl, library_path)


def kernels(impl, library_path: str):
    """(march, composite) of the module under test, bound to the built library."""
    return (lambda *args: impl.march(*args, library_path=library_path),
            lambda *args: impl.composite(*args, library_path=library_path))


def outputs_and_grads(composite, inputs, weights):
    """([colour, depth, opacity], d/d [sigma, rgb, deltas, t]) of sum(colour w_c + depth w_d + opacity w_o)."""
    inputs = [x.clone().requires_grad_() for x in inputs]
    outputs = composite(*inputs)
    loss = sum((out * w).sum() for out, w in zip(outputs, weights))
    grads = torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True)
    return [out.detach() for out in outputs], grads


def check_against_torch(ctx: RunContext, impl, library_path: str, targets: list[torch.device]) -> None:
    """Worst relative errors of the kernels' outputs and gradients against the float64 plain-PyTorch rendering over
    the fixed cases and seeded random ones (ray and sample counts that are no multiple of any block size)."""
    p, g = ctx.params, ctx.generator
    march, composite = kernels(impl, library_path)
    worst = dict.fromkeys(["max_rel_error", "float32_max_rel_error", "grad_max_rel_error",
                           "float32_grad_max_rel_error", "march_max_rel_error"], 0.0)
    random = torch.stack([torch.randint(1, p["max_rays"] + 1, (p["trials"],), generator=g),
                          torch.randint(1, p["max_samples"] + 1, (p["trials"],), generator=g),
                          torch.randint(1, 5, (p["trials"],), generator=g)], 1)
    cases = FIXED + [tuple(c) for c in random.tolist()]
    for trial, (rays, count, channels) in enumerate(cases):
        dtype = (torch.float64, torch.float32)[trial % 2]
        inputs = tiny_nerf.random_samples(g, rays, count, channels, dtype, NEAR)
        weights = [torch.randn(shape, generator=g, dtype=torch.float64) for shape in ((rays, channels), (rays,),
                                                                                     (rays,))]
        expected = outputs_and_grads(tiny_nerf.composite_torch, [x.double() for x in inputs], weights)
        origins, directions = torch.randn(rays, 3, generator=g, dtype=dtype), torch.randn(rays, 3, generator=g,
                                                                                          dtype=dtype)
        jitter = torch.rand(rays, count, generator=g, dtype=dtype)
        expected_march = tiny_nerf.march_torch(origins.double(), directions.double(), jitter.double(), NEAR, FAR)
        prefix = "" if dtype == torch.float64 else "float32_"
        for device in targets:
            outputs, grads = outputs_and_grads(composite, [x.to(device) for x in inputs],
                                               [w.to(device, dtype) for w in weights])
            for ours, reference in zip(outputs, expected[0]):
                worst[prefix + "max_rel_error"] = max(worst[prefix + "max_rel_error"],
                                                      relative_error(ours.cpu().double(), reference)[0])
            for ours, reference in zip(grads, expected[1]):
                worst[prefix + "grad_max_rel_error"] = max(worst[prefix + "grad_max_rel_error"],
                                                           relative_error(ours.cpu().double(), reference)[0])
            marched = march(origins.to(device), directions.to(device), jitter.to(device), NEAR, FAR)
            if dtype == torch.float64:  # float32 gaps are differences of depths: their rounding is the depths'
                for ours, reference in zip(marched, expected_march):
                    worst["march_max_rel_error"] = max(worst["march_max_rel_error"],
                                                       relative_error(ours.cpu(), reference)[0])
        ctx.log("max_rel_error_so_far", worst["max_rel_error"], trial)
    ctx.metrics.update(worst, trials=len(cases))


def speed(ctx: RunContext, impl, library_path: str, device: torch.device) -> dict:
    """median_compare(kernel, plain PyTorch) for the compositing's forward, its forward + backward (all four
    gradients), and the march, float32, at the scale's [rays, samples]."""
    rays, count = ctx.params["bench"]
    march, composite = kernels(impl, library_path)
    inputs = [x.to(device) for x in tiny_nerf.random_samples(ctx.generator, rays, count, 3, torch.float32, NEAR)]
    leaves = [x.clone().requires_grad_() for x in inputs]
    rays_in = [torch.randn(rays, 3).to(device), torch.randn(rays, 3).to(device), torch.rand(rays, count).to(device)]

    def both(render):
        def step():
            with torch.enable_grad():
                colour, depth, opacity = render(*leaves)
                grads = torch.autograd.grad(colour.sum() + depth.sum() + opacity.sum(), leaves)
            return synced(grads, device)
        return step

    seconds, repeats = ctx.params["bench_seconds"], ctx.params["repeats"]
    return {"forward": median_compare(lambda: synced(composite(*inputs), device),
                                      lambda: synced(tiny_nerf.composite_torch(*inputs), device), seconds, repeats),
            "forward_backward": median_compare(both(composite), both(tiny_nerf.composite_torch), seconds, repeats),
            "march": median_compare(lambda: synced(march(*rays_in, NEAR, FAR), device),
                                    lambda: synced(tiny_nerf.march_torch(*rays_in, NEAR, FAR), device), seconds,
                                    repeats)}


def synced(out, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # a CUDA launch returns before the kernel ends
    return out


# --- the tiny NeRF --------------------------------------------------------------------------------------------

def views(count: int, size: int, offset: float) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(origins, directions, true colours) of `count` cameras evenly around the circle, the first at `offset`
    (radians): the synthetic scene rendered analytically."""
    cameras = []
    for i in range(count):
        origins, directions = tiny_nerf.camera_rays(offset + 2 * math.pi * i / count, ELEVATION, DISTANCE, size,
                                                    FOV_DEGREES)
        cameras.append((origins, directions, tiny_nerf.render_spheres(origins, directions)))
    return cameras


def render_views(model, cameras, samples: int, march, composite) -> list[tuple[torch.Tensor, ...]]:
    """(colour, depth, opacity) of each camera's rays, with the samples at their bins' centres (no jitter)."""
    with torch.no_grad():
        return [tiny_nerf.render(model, o, d, torch.full((len(o), samples), 0.5), SCENE_NEAR, SCENE_FAR, march,
                                 composite) for o, d, _ in cameras]


def mean_psnr(rendered, cameras) -> float:
    return sum(tiny_nerf.psnr(r[0], c[2]) for r, c in zip(rendered, cameras)) / len(cameras)


def fit_scene(ctx: RunContext, impl, library_path: str) -> None:
    """Fit a TinyNeRF to the training views by rendering random batches of their rays through the kernels (the
    samples jittered in their bins every step; Adam, cosine-annealed); the held-out views sit halfway between
    training cameras. PSNR on them over the steps, against the mean training colour; the final model rendered
    through the plain-PyTorch path too."""
    p, g = ctx.params, ctx.generator
    march, composite = kernels(impl, library_path)
    train = views(p["views"], p["image"], 0.0)
    heldout = views(p["heldout"], p["image"], math.pi / p["views"])  # halfway between two training cameras
    origins, directions, colours = (torch.cat(parts) for parts in zip(*train))
    model = tiny_nerf.TinyNeRF(width=p["width"])
    optimizer = torch.optim.Adam(model.parameters(), lr=p["lr"], fused=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, p["steps"], eta_min=p["lr"] / 20)
    curve = {}
    for step in range(1, p["steps"] + 1):
        batch = torch.randint(0, len(origins), (p["batch"],), generator=g)
        jitter = torch.rand(p["batch"], p["samples"], generator=g)
        colour, _, _ = tiny_nerf.render(model, origins[batch], directions[batch], jitter, SCENE_NEAR, SCENE_FAR,
                                        march, composite)
        loss = ((colour - colours[batch]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % p["eval_every"] == 0 or step == p["steps"]:
            curve[step] = mean_psnr(render_views(model, heldout, p["samples"], march, composite), heldout)
            ctx.log("heldout_psnr", curve[step], step)
            ctx.log("train_loss", loss.item(), step)
    rendered = render_views(model, heldout, p["samples"], march, composite)
    by_torch = render_views(model, heldout, p["samples"], tiny_nerf.march_torch, tiny_nerf.composite_torch)
    mean_colour = colours.mean(0)
    ctx.metrics.update(
        heldout_psnr=curve[p["steps"]],
        train_psnr=mean_psnr(render_views(model, train, p["samples"], march, composite), train),
        mean_colour_psnr=sum(tiny_nerf.psnr(mean_colour.expand_as(c), c) for _, _, c in heldout) / len(heldout),
        torch_path_heldout_psnr=mean_psnr(by_torch, heldout),
        torch_path_max_abs_difference=max(float((a[0] - b[0]).abs().max()) for a, b in zip(rendered, by_torch)),
        psnr_curve=[[step, value] for step, value in curve.items()],
        data="synthetic scene (a stand-in): coloured spheres rendered analytically, no captured images",
    )
    ctx.save_checkpoint(model.state_dict(), "tiny_nerf.pt")
    plot(ctx, heldout, rendered, curve)


def plot(ctx: RunContext, heldout, rendered, curve: dict) -> None:
    """Each held-out view: the truth, the NeRF's rendering and its depth; and the held-out PSNR over the steps."""
    size = ctx.params["image"]
    fig = ctx.figure(figsize=(2.6 * len(heldout), 7.2))
    axes = fig.subplots(3, len(heldout), squeeze=False)
    for column, ((_, _, truth), (colour, depth, opacity)) in enumerate(zip(heldout, rendered)):
        psnr = tiny_nerf.psnr(colour, truth)
        shown_depth = torch.where(opacity > 0.5, depth / opacity.clamp(min=1e-6), torch.nan)
        for row, (picture, title) in enumerate(((truth, "ground truth (synthetic)"),
                                                (colour, f"tiny NeRF: {psnr:.1f} dB"))):
            axes[row, column].imshow(picture.reshape(size, size, 3).clamp(0, 1).numpy())
            axes[row, column].set(title=title, xticks=[], yticks=[])
        axes[2, column].imshow(shown_depth.reshape(size, size).numpy(), cmap="viridis")
        axes[2, column].set(title="depth (dark: near)", xticks=[], yticks=[])
    fig.suptitle("held-out views (cameras between the training ones)")
    ctx.save_figure(fig, "heldout_views")

    fig = ctx.figure(figsize=(5, 3.4))
    ax = fig.subplots()
    ax.plot(list(curve), list(curve.values()), "o-", label="tiny NeRF (a48's kernels)")
    ax.axhline(ctx.metrics["mean_colour_psnr"], color="grey", linestyle="--", label="mean training colour")
    ax.set(xlabel="step", ylabel="held-out PSNR (dB)", title="tiny NeRF on a synthetic scene")
    ax.grid(alpha=0.3)
    ax.legend()
    ctx.save_figure(fig, "psnr_curve")
