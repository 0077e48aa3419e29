"""Seeding and determinism in one place: every run and every test goes through `seed_everything`."""
from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch

from torchkata.pipeline.numerics import disable_cpu_dispatch_libraries


def seed_everything(seed: int, threads: int) -> torch.Generator:
    """Seed Python, NumPy and torch, pin torch's threads, and ask for deterministic kernels.

    CPU results are bitwise repeatable only for the same thread count, hence the pin; and across CPUs only on
    the same code paths (torchkata.pipeline.numerics), hence no oneDNN or NNPACK.
    Returns a torch.Generator seeded the same way, for data order and initialisation.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    # torch.use_deterministic_algorithms(True) without its import of torch._inductor (1.3 s): the same flag,
    # and inductor reads this variable when a compiling exercise first imports it
    torch._C._set_deterministic_algorithms(True)
    os.environ["TORCHINDUCTOR_DETERMINISTIC"] = "1"
    if "torch._inductor.config" in sys.modules:  # already read the variable
        sys.modules["torch._inductor.config"].deterministic = True
    torch.backends.cudnn.benchmark = False
    disable_cpu_dispatch_libraries()
    return torch.Generator().manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: derive each worker's NumPy/random seed from torch's per-worker seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
