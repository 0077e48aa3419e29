"""A mini logging system for training: per step the loss, the step time, the throughput and the memory in use
(the process's resident CPU memory; CUDA's allocated and peak memory where there is a GPU), shown on a tqdm
progress bar and written to a file as JSON lines (one object a step, readable by pandas.read_json(lines=True)).

    with StepLogger("steps.jsonl", total=steps) as logger:
        fit(model, optimizer, ..., loss_fn=logger.loss_fn(F.cross_entropy), before_step=logger.before_step)

training.loop calls loss_fn once a micro-batch and before_step once a step (after backward, before the optimizer):
loss_fn notes each batch's loss and size, before_step closes the step. The step time is the time between two
consecutive before_step calls, so it holds the previous optimizer step and this step's forward and backward.
What the logger costs itself is summed in `overhead_s`, so its share of the training time is measured, not guessed.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 2 ** 20


def cpu_memory_mb() -> float:
    """The process's resident memory (RSS) in MiB, from /proc/self/statm (Linux; reading it costs microseconds)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES / MIB


def gpu_memory_mb() -> dict | None:
    """CUDA memory held by tensors now and at its peak, in MiB; None without a GPU."""
    if not torch.cuda.is_available():
        return None
    return {"allocated": torch.cuda.memory_allocated() / MIB, "peak": torch.cuda.max_memory_allocated() / MIB}


class StepLogger:
    def __init__(self, path: str | Path, total: int | None = None, every: int = 1, console: bool = True,
                 clock: Callable[[], float] = time.perf_counter, file=None):
        """Write every `every`-th step to `path` (JSON lines); a tqdm bar of `total` steps on the console (on
        `file`, stderr by default) unless console=False. `clock` gives seconds (a fake one in tests)."""
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.path, self.every, self.clock = Path(path), every, clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.out = open(self.path, "w", encoding="utf-8")
        self.bar = None
        if console:
            from tqdm import tqdm

            # a redraw formats and writes the whole bar (about 90 us): twice a second is enough for a reader, where
            # tqdm's default (ten times) costs a 34 ms training step a quarter of a percent
            self.bar = tqdm(total=total, unit="step", file=file, dynamic_ncols=True, mininterval=0.5)
        self.step, self.overhead_s = 0, 0.0
        self.losses: list[tuple[Tensor, int]] = []  # the step's micro-batches: (loss, samples)
        self.last = clock()

    def loss_fn(self, loss_fn):
        """loss_fn that notes each batch's loss (detached, read at the step's end) and size."""
        def noted(output: Tensor, target: Tensor) -> Tensor:
            loss = loss_fn(output, target)
            self.losses.append((loss.detach(), len(target)))
            return loss
        return noted

    def before_step(self, model=None, step: int | None = None) -> None:
        """training.loop's hook: closes the step of the losses noted since the last call."""
        now = self.clock()
        samples = sum(n for _, n in self.losses)
        loss = sum(float(v) * n for v, n in self.losses) / samples if samples else float("nan")
        self.log(loss, samples, now - self.last)
        self.losses.clear()
        self.last = self.clock()
        self.overhead_s += self.last - now

    def log(self, loss: float, samples: int, seconds: float) -> dict:
        """One step's record: {step, loss, step_s, samples_per_s, cpu_mb, gpu_mb}; written every `every` steps."""
        self.step += 1
        record = {"step": self.step, "loss": loss, "step_s": seconds,
                  "samples_per_s": samples / seconds if seconds > 0 else float("inf"),
                  "cpu_mb": cpu_memory_mb(), "gpu_mb": gpu_memory_mb()}
        if self.step % self.every == 0:
            self.out.write(json.dumps(record) + "\n")
            if self.bar is not None:
                self.bar.set_postfix(loss=f"{loss:.4f}", step_ms=f"{seconds * 1e3:.1f}", refresh=False)
        if self.bar is not None:
            self.bar.update(1)
        return record

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.out.close()

    def __enter__(self) -> "StepLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_log(path: str | Path) -> list[dict]:
    """The records of a JSON-lines log."""
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
