"""m3-core-1 experiment: a training loop on Fashion-MNIST fed by the loader serially (each batch augmented when asked
for) and prefetching (augmented on a background thread, `depth` batches ahead), and by torch.utils.data.DataLoader
with a worker process as the library's baseline: steps/s of each in one process, a timeline of the producer's and the
consumer's intervals, and the check that both of our loaders yield bitwise the same batches and train to the same
weights. Where there is a CUDA device the prefetcher stages in pinned memory and copies with non_blocking=True on a
side stream (its CUDA half); here it is skipped with the reason."""
from __future__ import annotations

import hashlib
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from torchkata.data import fashion_mnist
from torchkata.data.augment import augment, augmented_batches
from torchkata.data.prefetch import Prefetcher, serial
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"samples": 384, "batch_size": 128, "depth": 2, "hidden": 64, "timeline_steps": 4, "workers": 0},
    "default": {"samples": 7680, "batch_size": 256, "depth": 2, "hidden": 512, "timeline_steps": 12, "workers": 1},
    "full": {"samples": 60000, "batch_size": 256, "depth": 4, "hidden": 1024, "timeline_steps": 20, "workers": 2},
}


def run(ctx: RunContext) -> None:
    p = ctx.params
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ctx.half("cuda", None if device == "cuda" else "no CUDA device: no pinned memory or side stream to use; the "
             "prefetcher stages in plain memory and copies synchronously")
    train = fashion_mnist.load(ctx.input("fashion-mnist"), "train")
    images, labels = train["images"][:p["samples"]], train["labels"][:p["samples"]]
    seed = ctx.seed

    def batches(log=None):
        return timed(augmented_batches(images, labels, p["batch_size"], torch.Generator().manual_seed(seed)), log)

    results, timelines = {}, {}
    for name in ("serial", "prefetch"):
        producer, consumer = [], []
        loader = serial(batches(producer), device) if name == "serial" else \
            Prefetcher(batches(producer), p["depth"], device)
        results[name] = train_epoch(loader, p["hidden"], device, consumer)
        timelines[name] = (producer, consumer)
    if p["workers"]:
        results["DataLoader"] = train_epoch(library_loader(images, labels, p, seed, device), p["hidden"], device, [])

    ctx.metrics.update(
        mismatched_batches=sum(a != b for a, b in zip(results["serial"]["hashes"], results["prefetch"]["hashes"]))
        + abs(len(results["serial"]["hashes"]) - len(results["prefetch"]["hashes"])),
        batches=len(results["serial"]["hashes"]),
        same_weights=results["serial"]["weights"] == results["prefetch"]["weights"],
        serial_final_loss=results["serial"]["loss"], prefetch_final_loss=results["prefetch"]["loss"])
    steps_per_s = {name: r["steps"] / r["seconds"] for name, r in results.items()}
    ctx.bench.update(steps_per_s=steps_per_s, prefetch_speedup=steps_per_s["prefetch"] / steps_per_s["serial"],
                     pin_memory=device == "cuda", depth=p["depth"], threads=torch.get_num_threads())
    if "DataLoader" in steps_per_s:
        ctx.bench["prefetch_vs_dataloader"] = steps_per_s["prefetch"] / steps_per_s["DataLoader"]
    ctx.bench["busy_fraction"] = {name: busy(timeline[1]) for name, timeline in timelines.items()}
    # the mean preparation and step, each on the thread that ran it: how much of the speed-up is overlap
    ctx.bench["prepare_ms"] = {name: mean_ms(timeline[0]) for name, timeline in timelines.items()}
    ctx.bench["step_ms"] = {name: mean_ms(timeline[1]) for name, timeline in timelines.items()}
    plot_timeline(ctx, timelines, p["timeline_steps"])


def timed(batches, log):
    """The batches, each one's preparation (start, end) appended to `log`: on whichever thread pulls them."""
    iterator = iter(batches)
    while True:
        start = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            return
        if log is not None:
            log.append((start, time.perf_counter()))
        yield batch


def train_epoch(loader, hidden: int, device: str, log: list) -> dict:
    """One epoch of an MLP on the loader's batches, the same initial weights every time; each step's (start, end) in
    `log`. Returns steps, seconds, the last batch's loss, and hashes of every batch and of the final weights."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    with torch.no_grad():
        for i, param in enumerate(model.parameters()):
            param.copy_(torch.randn(param.shape, generator=torch.Generator().manual_seed(i)) * 0.03)
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    hashes, loss = [], float("nan")
    start = time.perf_counter()
    for x, y in loader:
        step_start = time.perf_counter()
        hashes.append(digest(x, y))
        optimizer.zero_grad(set_to_none=True)
        loss_t = F.cross_entropy(model(x), y)
        loss_t.backward()
        optimizer.step()
        loss = loss_t.item()
        log.append((step_start, time.perf_counter()))
    seconds = time.perf_counter() - start
    weights = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in model.parameters())).hexdigest()
    return {"steps": len(hashes), "seconds": seconds, "loss": loss, "hashes": hashes, "weights": weights}


def digest(*tensors) -> str:
    return hashlib.sha256(b"".join(t.cpu().contiguous().numpy().tobytes() for t in tensors)).hexdigest()


class AugmentedBatches(Dataset):
    """Batch i of the epoch as one DataLoader item (batch_size=None), augmented in a worker with a generator of its
    own (workers share no generator): the same work as ours, other random draws."""

    def __init__(self, images, labels, batch_size: int, seed: int):
        self.order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)).split(batch_size)
        self.images, self.labels, self.seed = images, labels, seed

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int):

        idx = self.order[i]
        return augment(self.images[idx], torch.Generator().manual_seed(self.seed * 100003 + i)), self.labels[idx]


def library_loader(images, labels, p: dict, seed: int, device: str):
    loader = DataLoader(AugmentedBatches(images, labels, p["batch_size"], seed), batch_size=None,
                        num_workers=p["workers"], prefetch_factor=p["depth"], pin_memory=device == "cuda")
    return ((x.to(device, non_blocking=True), y.to(device, non_blocking=True)) for x, y in loader)


def mean_ms(intervals: list[tuple[float, float]]) -> float:
    return 1000 * sum(end - start for start, end in intervals) / max(len(intervals), 1)


def busy(intervals: list[tuple[float, float]]) -> float:
    """The fraction of the consumer's time from its first step's start to its last's end spent in steps."""
    if len(intervals) < 2:
        return 1.0
    return sum(end - start for start, end in intervals) / (intervals[-1][1] - intervals[0][0])


def plot_timeline(ctx: RunContext, timelines: dict, steps: int) -> None:
    """A Gantt chart: the producer's preparations and the consumer's steps over the first `steps` batches."""
    fig = ctx.figure(figsize=(9, 1.2 + 1.1 * len(timelines)))
    ax = fig.subplots()
    labels = []
    for row, (name, (producer, consumer)) in enumerate(timelines.items()):
        origin = min(producer[0][0], consumer[0][0]) if producer and consumer else 0.0
        for lane, (who, intervals, colour) in enumerate((("producer: augment", producer, "C1"),
                                                         ("consumer: train step", consumer, "C0"))):
            y = 2 * row + lane
            ax.broken_barh([(1000 * (s - origin), 1000 * (e - s)) for s, e in intervals[:steps]], (y - 0.4, 0.8),
                           facecolors=colour, edgecolor="white")
            labels.append(f"{name}: {who}")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set(xlabel="ms since the first batch was asked for",
           title=f"first {steps} batches: serial waits for each augmentation, prefetch overlaps them")
    ax.grid(axis="x", alpha=0.3)
    ctx.save_figure(fig, "timeline")
