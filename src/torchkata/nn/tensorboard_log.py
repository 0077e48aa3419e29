"""b03-10: a training's figures written to TensorBoard event files, through torch.utils.tensorboard.SummaryWriter.

TensorBoard reads a folder of event files (protocol buffers, appended as the run goes): scalars (a curve per tag),
histograms (a distribution per step: count, min, max, sum, sum of squares and bucket counts) and images (PNG).
`TensorBoardLog` plugs into the shared training loop through its two hooks, so that the loop itself stays as it
is:

    with TensorBoardLog(folder, histogram_every=50) as tb:
        fit(model, optimizer, train, test, epochs, batch_size, generator, log=tb.log, before_step=tb.before_step)
        tb.images("inputs", x[:16], step=0)

`log(key, value, step)` takes each epoch's figures (train_loss, test_loss, test_accuracy) as scalars;
`before_step(model, step)` sees the gradients after backward and before the update: it writes their total norm
as the scalar grad_norm every step and, every `histogram_every` steps, a histogram of each parameter and of its
gradient under `weights/<name>` and `grads/<name>`.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.tensorboard import SummaryWriter


class TensorBoardLog:
    def __init__(self, log_dir: str | Path, histogram_every: int = 1):
        if histogram_every < 1:
            raise ValueError(f"histogram_every must be at least 1, got {histogram_every}")
        self.histogram_every = histogram_every
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, key: str, value: float, step: int) -> None:
        """A scalar: the `log` hook of training.loop.fit."""
        self.writer.add_scalar(key, value, step)

    def before_step(self, model: nn.Module, step: int) -> None:
        """The total 2-norm of the gradients every step; histograms of weights and gradients every
        `histogram_every` steps (from step 0). Parameters without a gradient get a weight histogram only."""
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if grads:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            self.writer.add_scalar("grad_norm", float(norm), step)
        if step % self.histogram_every:
            return
        for name, p in model.named_parameters():
            self.writer.add_histogram(f"weights/{name}", p, step)
            if p.grad is not None:
                self.writer.add_histogram(f"grads/{name}", p.grad, step)

    def images(self, tag: str, images: Tensor, step: int) -> None:
        """A batch of images (N, C, H, W), C 1 or 3, floats in [0, 1], written as one grid image."""
        if images.dim() != 4 or images.shape[1] not in (1, 3) or not len(images):
            raise ValueError(f"images must be (N, C, H, W) with N at least 1 and C 1 or 3, got shape "
                             f"{tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"images must be floats in [0, 1], got dtype {images.dtype}")
        if images.min() < 0 or images.max() > 1:
            raise ValueError(f"images must be in [0, 1], got values in [{float(images.min()):g}, "
                             f"{float(images.max()):g}]")
        self.writer.add_images(tag, images, step, dataformats="NCHW")

    def close(self) -> None:
        self.writer.close()  # flushes: a reader sees every event after this

    def __enter__(self) -> "TensorBoardLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
