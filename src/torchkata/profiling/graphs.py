"""m4-deep-1: inference through captured graphs: record the ops of a forward once, then replay them for every request
without the Python that issued them.

A CUDA graph (torch.cuda.CUDAGraph) records the kernels a stream launches during capture, with their arguments
and the memory addresses they read and write, and `replay()` launches them all with one call: the CPU's cost per
kernel (Python, the dispatcher, the launch itself, several microseconds each) is paid once, at capture. What it
asks of the caller is what `GraphedInference` does:
- static buffers: the graph reads its input from the tensor it was captured with, so each request is copied into
  that tensor (`copy_`), and the output is the tensor the capture made, overwritten by each replay: return a clone,
  or the next request changes the result the caller holds;
- static shapes: a graph per batch size ("bucket"); a request is padded up to the smallest bucket that fits and the
  rows it asked for are sliced off (the model's rows must be independent of each other);
- warm-up before capture (on a side stream on CUDA), so that one-time work (cuBLAS handles, lazy initialisation,
  the caching allocator's first blocks) is not captured; the buckets share one memory pool;
- nothing during capture may read a value back to the host (`.item()`, printing a tensor, a branch on a value): on
  CUDA that is a synchronisation, an error during capture.

`RecordedGraph` is the same contract on a CPU, where there is no CUDA graph: `capture()` records the torch calls made
inside it (a TorchFunctionMode), `replay()` makes them again, in order, without the Python that made them (no module
calls, no forward code: a Python side effect of the forward does not happen again). Tensors made before the capture
(the static input, the weights) are read as they are at replay; every tensor the capture made that is still held
(the static output) is overwritten with its new value, as a graph's memory is.
"""
from __future__ import annotations

import contextlib
import weakref
from typing import Callable, Sequence

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

# torch calls that read tensor values back to the host (or make a shape from them): not capturable
HOST_READS = {"item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__", "__repr__", "__format__",
              "equal", "allclose", "nonzero"}


class Slot:
    """In a recorded call's arguments: the value the call that made slot `index` returns at replay."""
    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


def resolve(template, values: list):
    """The arguments of a recorded call with each Slot replaced by its value in this replay."""
    kind = type(template)  # exact types: a torch.Size or a named tuple holds no tensors, and is kept as it is
    if kind is Slot:
        return values[template.index]
    if kind is tuple or kind is list:
        return kind([resolve(item, values) for item in template])
    if kind is dict:
        return {key: resolve(item, values) for key, item in template.items()}
    return template


class Recorder(TorchFunctionMode):
    """Records every torch call whose result is a tensor, tensors, or None (an in-place write such as
    __setitem__); calls that return other values (a Size, an int from .dim()) are static and left out."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []  # (func, args, kwargs, output slots)
        self.made: list[Tensor] = []  # slot index -> the tensor the capture made (held: ids stay unique)
        self.slot_of: dict[int, int] = {}  # id of a tensor the capture made -> its slot

    def template(self, value):
        """`value` with each tensor the capture made replaced by its Slot."""
        if isinstance(value, Tensor) and id(value) in self.slot_of:
            return Slot(self.slot_of[id(value)])
        if type(value) in (list, tuple):
            return type(value)([self.template(item) for item in value])
        if type(value) is dict:
            return {key: self.template(item) for key, item in value.items()}
        return value

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            raise RuntimeError(f"capture: {name} reads a tensor's values back to the host, which a graph cannot "
                               "capture (on CUDA, a synchronisation during capture is an error)")
        out = func(*args, **kwargs)
        outputs = out if isinstance(out, tuple) else (out,)
        if out is not None and not any(isinstance(t, Tensor) for t in outputs):
            return out  # static metadata
        call = (func, self.template(args), self.template(kwargs), tuple(self._slot(t) for t in outputs))
        self.calls.append(call)
        return out

    def _slot(self, value) -> int | None:
        """A new slot for a tensor not seen before; None for one the capture made already (returned by an in-place
        call) and for what is not a tensor. (A tensor from before the capture that a call returns as it is, e.g.
        x.contiguous(), gets a slot too: at replay it is copied onto itself, which changes nothing.)"""
        if not isinstance(value, Tensor) or id(value) in self.slot_of:
            return None
        self.slot_of[id(value)] = len(self.made)
        self.made.append(value)
        return len(self.made) - 1


class RecordedGraph:
    """The CPU stand-in of torch.cuda.CUDAGraph: `with graph.capture(): ...` once, then `graph.replay()`."""

    def __init__(self):
        self.calls: list[tuple] | None = None
        self.held: list[tuple[int, weakref.ref]] = []  # the captured tensors still alive after the capture

    @contextlib.contextmanager
    def capture(self):
        if self.calls is not None:
            raise RuntimeError("RecordedGraph: already captured; make a new graph to capture again")
        recorder = Recorder()
        with recorder:
            yield self
        refs = [(i, weakref.ref(t)) for i, t in enumerate(recorder.made)]
        self.calls, self.slots = recorder.calls, len(recorder.made)
        del recorder  # its tensors die now, except those the caller holds
        self.held = [(i, ref) for i, ref in refs if ref() is not None]

    def replay(self) -> None:
        if self.calls is None:
            raise RuntimeError("RecordedGraph: replay before capture")
        values: list = [None] * self.slots
        with torch.inference_mode():
            for func, args, kwargs, slots in self.calls:
                out = func(*resolve(args, values), **resolve(kwargs, values))
                for slot, value in zip(slots, out if isinstance(out, tuple) else (out,)):
                    if slot is not None:
                        values[slot] = value
            for slot, ref in self.held:
                held = ref()
                if held is not None:
                    held.copy_(values[slot])


class CudaGraph:
    """torch.cuda.CUDAGraph with RecordedGraph's interface; graphs given the same `pool` share their memory."""

    def __init__(self, pool=None):
        self.graph, self.pool = torch.cuda.CUDAGraph(), pool

    def capture(self):
        return torch.cuda.graph(self.graph, pool=self.pool)

    def replay(self) -> None:
        self.graph.replay()


@contextlib.contextmanager
def side_stream(device: torch.device):
    """Run the block on a fresh CUDA stream ordered after the current one and before what follows (CUDA's advice
    for the warm-up before a capture)."""
    side, current = torch.cuda.Stream(device), torch.cuda.current_stream(device)
    side.wait_stream(current)
    with torch.cuda.stream(side):
        yield
    current.wait_stream(side)


class GraphedInference:
    """`model` (a function of one batch, its rows independent) captured once per size in `batch_sizes`, for inputs
    shaped like `example` past its first dimension, of its dtype, on its device (CUDA: CUDA graphs; else
    RecordedGraph). A call copies its batch into the smallest captured size that holds it, replays that graph, and
    returns the output's rows for the batch: a clone, or with clone=False a view of the static output that the
    next call of that size overwrites. `warmup` forward calls before each capture."""

    def __init__(self, model: Callable[[Tensor], Tensor], example: Tensor, batch_sizes: Sequence[int] = (1,),
                 warmup: int = 3, clone: bool = True):
        sizes = sorted(set(batch_sizes), reverse=True)  # largest first: the smaller ones reuse its pool's memory
        if not sizes or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in sizes):
            raise ValueError(f"GraphedInference: batch_sizes must be positive integers, got {list(batch_sizes)!r}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"GraphedInference: warmup must be an integer >= 0, got {warmup!r}")
        if example.dim() < 1:
            raise ValueError("GraphedInference: example must have a batch dimension, got a 0-d tensor")
        self.sample_shape, self.dtype, self.device = example.shape[1:], example.dtype, example.device
        self.clone = clone
        on_cuda = self.device.type == "cuda"
        pool = torch.cuda.graph_pool_handle() if on_cuda else None
        self.graphs: dict[int, tuple[Tensor, Tensor, object]] = {}
        for size in sizes:
            static_input = torch.zeros((size, *self.sample_shape), dtype=self.dtype, device=self.device)
            with torch.inference_mode():
                with side_stream(self.device) if on_cuda else contextlib.nullcontext():
                    for _ in range(warmup):
                        model(static_input)
                graph = CudaGraph(pool) if on_cuda else RecordedGraph()
                with graph.capture():
                    static_output = model(static_input)
            self.graphs[size] = (static_input, static_output, graph)
        self.batch_sizes = sizes[::-1]

    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.shape[1:] != self.sample_shape or x.dtype != self.dtype or x.device != self.device:
            raise ValueError(f"GraphedInference: captured for inputs of shape (batch, "
                             f"{', '.join(map(str, self.sample_shape))}), {self.dtype} on {self.device}; got "
                             f"{tuple(x.shape)}, {x.dtype} on {x.device}")
        batch = x.shape[0]
        size = next((b for b in self.batch_sizes if b >= batch), None)
        if size is None:
            raise ValueError(f"GraphedInference: batch of {batch} is larger than every captured size "
                             f"{self.batch_sizes}")
        static_input, static_output, graph = self.graphs[size]
        static_input[:batch].copy_(x)
        graph.replay()
        rows = static_output[:batch]
        return rows.clone() if self.clone else rows
