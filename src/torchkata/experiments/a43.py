"""a43 experiment: the hand-written ReLU kernels (CPU, and CUDA where there is a GPU) against torch.relu, values and
gradients compared bit for bit over seeded trials of awkward sizes in every float dtype, and their speed against
torch's own kernels (relu forward, threshold_backward backward) over sizes."""
from __future__ import annotations

import torch

from torchkata.extensions.kernel_bench import devices, plot_sweeps, speed_sweep
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"trials": 4, "max_numel": 2000, "sweep": [1 << 12], "bench_seconds": 0.02},
    "default": {"trials": 40, "max_numel": 1 << 18, "sweep": [1 << 10, 1 << 14, 1 << 18, 1 << 22],
                "bench_seconds": 0.3},
    "full": {"trials": 200, "max_numel": 1 << 24, "sweep": [1 << 10, 1 << 14, 1 << 18, 1 << 22, 1 << 25],
             "bench_seconds": 1.0},
}
# the CUDA block is 256 threads and the CPU grain 2^15 elements: sizes around both, and the edge cases
FIXED_SIZES = [0, 1, 255, 256, 257, 1 << 15, (1 << 15) + 1]
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
SPECIAL = [-0.0, 0.0, float("nan"), float("inf"), -float("inf")]


def mismatches(ours: torch.Tensor, expected: torch.Tensor) -> int:
    """Elements whose bits differ: NaN against NaN counts as equal, -0.0 against 0.0 does not."""
    same = (ours == expected) & (ours.signbit() == expected.signbit()) | (ours.isnan() & expected.isnan())
    return int((~same).sum())


def run(ctx: RunContext) -> None:
    p, g = ctx.params, ctx.generator
    library_path = str(ctx.input("relu"))
    impl = ctx.impl
    targets = devices(ctx, impl.ops(library_path).relu_has_cuda())
    counts = {"mismatched_elements": 0, "mismatched_gradients": 0, "elements": 0, "negative_elements": 0}
    sizes = FIXED_SIZES + [int(n) for n in torch.randint(1, p["max_numel"] + 1, (p["trials"],), generator=g)]
    for trial, numel in enumerate(sizes):
        dtype = DTYPES[trial % len(DTYPES)]
        x = torch.cat([torch.tensor(SPECIAL[:numel]), torch.randn(max(numel - len(SPECIAL), 0), generator=g)])
        x, weights = x.to(dtype), (torch.rand(numel, generator=g) + 0.5).to(dtype)
        for device in targets:
            ours_in, native_in = (x.to(device).requires_grad_() for _ in range(2))
            ours, native = impl.relu(ours_in, library_path), torch.relu(native_in)
            (ours_grad,) = torch.autograd.grad((ours * weights.to(device)).sum(), ours_in)
            (native_grad,) = torch.autograd.grad((native * weights.to(device)).sum(), native_in)
            counts["mismatched_elements"] += mismatches(ours.detach().cpu(), native.detach().cpu())
            counts["mismatched_gradients"] += mismatches(ours_grad.cpu(), native_grad.cpu())
            counts["elements"] += numel
            counts["negative_elements"] += int((x < 0).sum())
        ctx.log("mismatched_elements_so_far", counts["mismatched_elements"], trial)
    ctx.metrics.update(counts, trials=len(sizes), dtypes=[str(d).removeprefix("torch.") for d in DTYPES])

    def make(size, device):
        x = torch.randn(size, generator=g).to(device)
        return x, torch.relu(x), torch.randn(size, generator=g).to(device)  # input, output, incoming gradient

    ops = impl.ops(library_path)
    sweeps = {
        "forward": {device.type: speed_sweep(ctx, p["sweep"], make, lambda x, y, grad: ops.relu_forward(x),
                                             lambda x, y, grad: torch.relu(x), device, lambda n: 2 * 4 * n)
                    for device in targets},
        "backward": {device.type: speed_sweep(ctx, p["sweep"], make, lambda x, y, grad: ops.relu_backward(grad, y),
                                              lambda x, y, grad: torch.ops.aten.threshold_backward(grad, y, 0),
                                              device, lambda n: 3 * 4 * n)
                     for device in targets},
    }
    largest = p["sweep"][-1]
    for direction, by_device in sweeps.items():
        ctx.bench[f"{direction}_sweeps"] = {d: {str(n): v for n, v in s.items()} for d, s in by_device.items()}
        ctx.bench[f"{direction}_ratio"] = by_device["cpu"][largest]["ratio"]
        if "cuda" in by_device:
            ctx.bench[f"cuda_{direction}_ratio"] = by_device["cuda"][largest]["ratio"]
        plot_sweeps(ctx, by_device, f"ReLU {direction}", name=f"speed_{direction}")
    ctx.bench["ratio"] = ctx.bench["forward_ratio"]
