"""m4-deep-1: graphed inference, graded on a CPU through the stand-in graph. RecordedGraph: a replay makes the
recorded calls again on the tensors as they are now (a new input copied in place, weights changed in place), with
in-place calls, item assignment, lists, keyword arguments, tuple outputs and views, without running the Python
that made them; the tensors the capture made that are still held are overwritten; a read of values back to the host
during capture is refused by name; one capture per graph. GraphedInference: the eager outputs (bitwise at a
captured size, within a tolerance padded up to one), for empty, padded and non-contiguous batches; each request
copied into the static input; a clone returned, or with clone=False the static output of the smallest captured
size that holds the batch, overwritten by the next request; the forward's Python run only at warm-up and capture;
weights changed in place seen; bad input refused with errors that name it. On a GPU the same wrapper on CUDA
graphs (skipped here)."""
import contextlib
import re

import pytest
import torch
from torch import nn

from grading import failing_checks

EXERCISE = "m4-deep-1"


@pytest.fixture(scope="module")
def graphs(impl_for):
    return impl_for(EXERCISE)


def mlp(features=4, hidden=8, out=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(features, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, out))
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=g))
    return model.eval()


def counted(model):
    """The model and a list whose first item counts its forward calls (Python that a replay does not run)."""
    calls = [0]
    model.register_forward_pre_hook(lambda module, args: calls.__setitem__(0, calls[0] + 1))
    return model, calls


def eager(model, x):
    with torch.inference_mode():
        return model(x)


def check_replay_reads_tensors_as_they_are_now(graphs):
    g = torch.Generator().manual_seed(1)
    x, w, b = torch.randn(2, 4, generator=g), torch.randn(4, 3, generator=g), torch.randn(3, generator=g)

    def fn(x):
        h = x @ w
        h.add_(1)
        return torch.relu(h) + b

    graph = graphs.RecordedGraph()
    with graph.capture():
        y = fn(x)
    assert torch.equal(y, fn(x))
    for change in (lambda: x.copy_(torch.randn(2, 4, generator=g)), lambda: w.mul_(-2), lambda: None):
        change()
        graph.replay()
        assert torch.equal(y, fn(x)), "the replay did not compute from the tensors as they are now"


def check_replay_runs_no_python(graphs):
    ran, x = [], torch.ones(3)

    def fn(x):
        ran.append(1)
        return x * 2

    graph = graphs.RecordedGraph()
    with graph.capture():
        y = fn(x)
    x.fill_(5)
    for _ in range(3):
        graph.replay()
    assert ran == [1], "a replay ran the captured function's Python"
    assert torch.equal(y, torch.full((3,), 10.0))


def check_every_kind_of_call(graphs):
    """Tuple and named-tuple outputs, a list argument, keyword arguments, item assignment (in place, returns None), a
    view, and tensors made inside (torch.arange): all made again at replay, in order."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 4, generator=g)

    def fn(x):
        left, right = x.chunk(2, dim=1)
        joined = torch.cat([left, right * 2], dim=1)
        values, indices = torch.max(joined, dim=1)
        joined[:, 0] = values
        return joined.t().sum(dim=0, keepdim=True) + torch.arange(3.0), indices

    graph = graphs.RecordedGraph()
    with graph.capture():
        total, indices = fn(x)
    before = x.clone()
    for _ in range(2):
        x.copy_(torch.randn(3, 4, generator=g))
        graph.replay()
        expected_total, expected_indices = fn(x)
        assert torch.equal(total, expected_total) and torch.equal(indices, expected_indices)
        assert not torch.equal(x, before)


def check_held_outputs_overwritten_not_others(graphs):
    """Only what the capture made is overwritten: a tensor from before the capture keeps its value."""
    x, kept = torch.arange(4.0), torch.zeros(4)

    def fn(x):
        return x + 1, kept

    graph = graphs.RecordedGraph()
    with graph.capture():
        out, same = fn(x)
    assert same is kept
    x.fill_(10)
    graph.replay()
    assert torch.equal(out, torch.full((4,), 11.0)) and torch.equal(kept, torch.zeros(4))


def check_host_reads_refused(graphs):
    x = torch.ones(3)
    for name, fn in (("item", lambda: x.sum().item()), ("__bool__", lambda: bool(x.sum() > 0)),
                     ("tolist", lambda: x.tolist()), ("nonzero", lambda: x.nonzero())):
        graph = graphs.RecordedGraph()
        with pytest.raises(RuntimeError, match=f"capture: {name} reads a tensor's values back to the host"):
            with graph.capture():
                fn()
        with pytest.raises(RuntimeError, match="RecordedGraph: replay before capture"):
            graph.replay()
        with graph.capture():  # a failed capture leaves the graph to capture again
            y = x * 3
        graph.replay()
        assert torch.equal(y, torch.full((3,), 3.0))


def check_one_capture_per_graph(graphs):
    graph = graphs.RecordedGraph()
    with pytest.raises(RuntimeError, match="RecordedGraph: replay before capture"):
        graph.replay()
    with graph.capture():
        torch.ones(2) * 2
    with pytest.raises(RuntimeError, match="RecordedGraph: already captured; make a new graph"):
        with graph.capture():
            pass


def check_matches_eager(graphs):
    """Bitwise at the captured sizes; within a tolerance for batches padded up to one; empty and non-contiguous
    batches."""
    model = mlp()
    graphed = graphs.GraphedInference(model, torch.zeros(1, 4), batch_sizes=(8, 1, 4))
    assert graphed.batch_sizes == [1, 4, 8]
    g = torch.Generator().manual_seed(3)
    for batch in range(9):
        x = torch.randn(batch, 4, generator=g)
        out, expected = graphed(x), eager(model, x)
        assert out.shape == (batch, 3)
        if batch in (1, 4, 8):
            assert torch.equal(out, expected), batch
        else:
            torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    strided = torch.randn(4, 6, generator=g).t()  # (6, 4), not contiguous
    torch.testing.assert_close(graphed(strided), eager(model, strided.contiguous()), rtol=1e-5, atol=1e-6)
    assert graphs.GraphedInference(model, torch.zeros(1, 4)).batch_sizes == [1], "default: batch 1 only"
    doubling = graphs.GraphedInference(lambda x: x * 2, torch.zeros(5), [2, 3])  # samples of no dimension
    assert torch.equal(doubling(torch.tensor([1.0, 4.0])), torch.tensor([2.0, 8.0]))
    with torch.device("meta"):  # any device that is not CUDA: the stand-in graph
        on_meta = graphs.GraphedInference(model.to("meta"), torch.zeros(1, 4), [2])
        assert on_meta(torch.zeros(2, 4)).shape == (2, 3)


def check_each_request_copied_in(graphs):
    model = mlp(seed=1)
    graphed = graphs.GraphedInference(model, torch.zeros(2, 4), batch_sizes=[2])
    g = torch.Generator().manual_seed(4)
    for _ in range(3):
        x = torch.randn(2, 4, generator=g)
        assert torch.equal(graphed(x), eager(model, x)), "a request's own input did not reach the graph"


def check_clone_semantics(graphs):
    """clone=True: each result is the caller's. clone=False: the rows of the static output of the smallest captured
    size that holds the batch, overwritten by the next request of that size."""
    model = mlp(seed=2)
    g = torch.Generator().manual_seed(5)
    x1, x2 = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    graphed = graphs.GraphedInference(model, torch.zeros(1, 4), batch_sizes=[2, 4, 8])
    first = graphed(x1)
    graphed(x2)
    assert torch.equal(first, graphed(x1)) and first.data_ptr() != graphed.graphs[4][1].data_ptr()
    aliased = graphs.GraphedInference(model, torch.zeros(1, 4), batch_sizes=[2, 4, 8], clone=False)
    for batch, size in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 8)):
        assert aliased(torch.zeros(batch, 4)).data_ptr() == aliased.graphs[size][1].data_ptr(), (batch, size)
    first = aliased(x1)
    second = aliased(x2)
    assert torch.equal(first, second) and torch.equal(second, graphed(x2)), "clone=False: the static output's rows"


def check_python_runs_only_at_capture(graphs):
    for warmup, sizes in ((None, [1, 2]), (0, [3]), (2, [1, 2, 4])):
        model, calls = counted(mlp())
        if warmup is None:
            graphs.GraphedInference(model, torch.zeros(1, 4), sizes)
            assert calls[0] == 4 * len(sizes), "default: 3 warm-up forwards and the capture's, per size"
            continue
        graphed = graphs.GraphedInference(model, torch.zeros(1, 4), sizes, warmup=warmup)
        assert calls[0] == (warmup + 1) * len(sizes), (warmup, sizes, calls[0])
        for batch in range(1, max(sizes) + 1):
            graphed(torch.ones(batch, 4))
        assert calls[0] == (warmup + 1) * len(sizes), "a request ran the forward's Python"


def check_weights_changed_in_place_are_seen(graphs):
    model = mlp(seed=3)
    graphed = graphs.GraphedInference(model, torch.zeros(1, 4), [2])
    x = torch.randn(2, 4, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        model[0].weight.mul_(-0.5)
    assert torch.equal(graphed(x), eager(model, x))


def check_bad_input(graphs):
    model = mlp()
    graphed = graphs.GraphedInference(model, torch.zeros(1, 4), [1, 2])
    message = r"GraphedInference: captured for inputs of shape \(batch, 4\), torch.float32 on cpu; got "
    for x, got in ((torch.zeros(2, 5), r"\(2, 5\), torch.float32 on cpu"),
                   (torch.zeros(2, 4, 1), r"\(2, 4, 1\), torch.float32 on cpu"),
                   (torch.zeros(2, 3), r"\(2, 3\), torch.float32 on cpu"),
                   (torch.zeros(()), r"\(\), torch.float32 on cpu"),
                   (torch.zeros(2, 4, dtype=torch.float64), r"\(2, 4\), torch.float64 on cpu"),
                   (torch.zeros(2, 4, device="meta"), r"\(2, 4\), torch.float32 on meta")):
        with pytest.raises(ValueError, match=message + got):
            graphed(x)
    scalars = graphs.GraphedInference(lambda x: x + 1, torch.zeros(2), [2])
    with pytest.raises(ValueError, match=r"captured for inputs of shape \(batch, \), torch.float32 on cpu; got \(\)"):
        scalars(torch.zeros(()))
    with pytest.raises(ValueError, match=r"GraphedInference: batch of 3 is larger than every captured size \[1, 2\]"):
        graphed(torch.zeros(3, 4))
    for sizes in ([], [0], [2, -1], [2.0], [True]):
        with pytest.raises(ValueError, match=r"GraphedInference: batch_sizes must be positive integers, got "
                                             + re.escape(repr(sizes))):
            graphs.GraphedInference(model, torch.zeros(1, 4), sizes)
    for warmup in (-1, 1.5, True):
        with pytest.raises(ValueError, match=f"GraphedInference: warmup must be an integer >= 0, got {warmup}"):
            graphs.GraphedInference(model, torch.zeros(1, 4), [1], warmup=warmup)
    with pytest.raises(ValueError, match="GraphedInference: example must have a batch dimension, got a 0-d"):
        graphs.GraphedInference(model, torch.zeros(()), [1])


CHECKS = [check_replay_reads_tensors_as_they_are_now, check_replay_runs_no_python, check_every_kind_of_call,
          check_held_outputs_overwritten_not_others, check_host_reads_refused, check_one_capture_per_graph,
          check_matches_eager, check_each_request_copied_in, check_clone_semantics,
          check_python_runs_only_at_capture, check_weights_changed_in_place_are_seen, check_bad_input]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_graphs(graphs, check):
    check(graphs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: no torch.cuda.CUDAGraph to capture here")
def test_cuda_graphs(graphs):
    model, calls = counted(mlp(features=64, hidden=256, out=10).cuda())
    graphed = graphs.GraphedInference(model, torch.zeros(1, 64, device="cuda"), [1, 8, 32])
    assert calls[0] == 12
    g = torch.Generator().manual_seed(7)
    first = None
    for batch in (1, 5, 8, 20, 32):
        x = torch.randn(batch, 64, generator=g).cuda()
        out = graphed(x)
        first = out if first is None else first
        torch.testing.assert_close(out, eager(model, x), rtol=1e-4, atol=1e-5)
    assert calls[0] == 12 + 5, "a CUDA graph's request ran the forward's Python"
    assert first.shape == (1, 10) and torch.isfinite(first).all()


class Broken:
    """The reference with one deliberate mistake."""

    def __init__(self, bug):
        from torchkata.profiling import graphs as reference

        self.reference, self.bug = reference, bug
        self.RecordedGraph = self._graph_class()

    def _graph_class(self):
        reference, bug = self.reference, self.bug

        class Recorder(reference.Recorder):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                if bug == "host_reads_allowed" and getattr(func, "__name__", "") in reference.HOST_READS:
                    return func(*args, **(kwargs or {}))
                recorded = len(self.calls)
                out = super().__torch_function__(func, types, args, kwargs)
                if bug == "in_place_calls_dropped" and len(self.calls) > recorded and not any(
                        slot is not None for slot in self.calls[-1][3]):
                    self.calls.pop()  # a call that made no new tensor: in place, or item assignment
                return out

        class Graph(reference.RecordedGraph):
            @contextlib.contextmanager
            def capture(self):
                original, reference.Recorder = reference.Recorder, Recorder
                try:
                    with super().capture() as graph:
                        reference.Recorder = original  # made: the capture records through the broken one
                        yield graph
                finally:
                    reference.Recorder = original

            def replay(self):
                if bug == "held_not_refreshed":
                    self.held = []
                return super().replay()

        return Graph

    def GraphedInference(self, model, example, batch_sizes=(1,), warmup=3, clone=True):
        reference, bug, graph_class = self.reference, self.bug, self.RecordedGraph
        if bug == "no_warm_up":
            warmup = 0 if isinstance(warmup, int) and not isinstance(warmup, bool) and warmup >= 0 else warmup
        original = reference.RecordedGraph
        reference.RecordedGraph = graph_class
        try:
            graphed = reference.GraphedInference(model, example, batch_sizes, warmup, clone)
        finally:
            reference.RecordedGraph = original

        class Wrong:
            graphs, batch_sizes = graphed.graphs, graphed.batch_sizes

            def __call__(self, x):
                if bug == "eager_per_request":
                    graphed(x)
                    return eager(model, x)
                if bug == "no_copy_in" and x.dim() == 2 and x.shape[0] in graphed.graphs:
                    static_input, static_output, graph = graphed.graphs[x.shape[0]]
                    graph.replay()
                    return static_output.clone()
                if bug == "no_clone":
                    graphed.clone = False
                if bug == "largest_bucket" and x.dim() == 2 and 0 < x.shape[0] <= max(graphed.graphs):
                    static_input, static_output, graph = graphed.graphs[max(graphed.graphs)]
                    static_input[:x.shape[0]].copy_(x)
                    graph.replay()
                    rows = static_output[:x.shape[0]]
                    return rows.clone() if clone else rows
                return graphed(x)

        return Wrong()


BROKEN = {  # bug: the check that must reject it
    "host_reads_allowed": check_host_reads_refused,
    "in_place_calls_dropped": check_replay_reads_tensors_as_they_are_now,
    "held_not_refreshed": check_held_outputs_overwritten_not_others,
    "no_warm_up": check_python_runs_only_at_capture,
    "eager_per_request": check_python_runs_only_at_capture,
    "no_copy_in": check_each_request_copied_in,
    "no_clone": check_clone_semantics,
    "largest_bucket": check_matches_eager,
}


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", BROKEN)
def test_broken_graphs_are_rejected(bug):
    check = BROKEN[bug]
    assert failing_checks([check], Broken(bug)) == [check.__name__]
