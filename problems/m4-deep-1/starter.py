"""m4-deep-1: graphed inference. A stand-in for torch.cuda.CUDAGraph on a CPU (RecordedGraph: record the torch calls
of a forward once, replay them without the Python around them), and the wrapper that inference with CUDA graphs
needs (GraphedInference: static input and output buffers per captured batch size, copy in, replay, clone out).
Grade it:  torchkata check m4-deep-1
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode  # noqa: F401  (what RecordedGraph records with)

# torch calls that read tensor values back to the host (or make a shape from them): refused during capture
HOST_READS = {"item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__", "__repr__", "__format__",
              "equal", "allclose", "nonzero"}


class RecordedGraph:
    """The CPU stand-in of torch.cuda.CUDAGraph.

    - `with graph.capture(): out = fn(x)` runs fn and records the torch calls made inside whose result is a tensor,
      tensors or None (item assignment). A call named in HOST_READS raises RuntimeError "capture: item reads a
      tensor's values back to the host, ..." (the graph stays uncaptured). A second capture raises RuntimeError
      "RecordedGraph: already captured; make a new graph to capture again".
    - `graph.replay()` makes the recorded calls again, in order, without running fn's Python: tensors made before the
      capture (x, the weights) are read as they are now; every tensor the capture made that is still held (out) is
      overwritten with its new value. Before a capture: RuntimeError "RecordedGraph: replay before capture".
    """

    def capture(self):
        raise NotImplementedError("m4-deep-1: record the calls (a TorchFunctionMode)")

    def replay(self) -> None:
        raise NotImplementedError("m4-deep-1: make the recorded calls again")


class CudaGraph:
    """torch.cuda.CUDAGraph with RecordedGraph's interface (capture() a context manager, replay()); graphs given
    the same `pool` share their memory."""

    def __init__(self, pool=None):
        raise NotImplementedError("m4-deep-1: the CUDA half")

    def capture(self):
        raise NotImplementedError("m4-deep-1: CudaGraph.capture (torch.cuda.graph)")

    def replay(self) -> None:
        raise NotImplementedError("m4-deep-1: CudaGraph.replay")


class GraphedInference:
    """`model` (a function of one batch returning one tensor, its rows independent) captured once per size in
    `batch_sizes`, for inputs shaped like `example` past its first dimension, of its dtype, on its device (CUDA:
    CudaGraph, warm-up on a side stream, one memory pool; else RecordedGraph). `warmup` forward calls (in
    inference mode) before each capture.

    - `graphs`: {size: (static_input, static_output, graph)}; `batch_sizes`: the captured sizes, ascending.
    - A call copies its batch into the static input of the smallest captured size that holds it, replays that
      graph, and returns the output's rows for the batch: a clone, or with clone=False a view of the static output
      that the next call of that size overwrites.
    - ValueError "GraphedInference: captured for inputs of shape (batch, 4), torch.float32 on cpu; got (2, 5),
      torch.float32 on cpu" for another sample shape, dtype or device; "GraphedInference: batch of 3 is larger than
      every captured size [1, 2]"; "GraphedInference: batch_sizes must be positive integers, got [0]"; "...: warmup
      must be an integer >= 0, got -1"; "...: example must have a batch dimension, got a 0-d tensor".
    """

    def __init__(self, model: Callable[[Tensor], Tensor], example: Tensor, batch_sizes: Sequence[int] = (1,),
                 warmup: int = 3, clone: bool = True):
        raise NotImplementedError("m4-deep-1: capture a graph per batch size with static buffers")

    def __call__(self, x: Tensor) -> Tensor:
        raise NotImplementedError("m4-deep-1: copy in, replay, return the rows")
