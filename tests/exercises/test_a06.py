"""a06: backward hooks that log each layer's largest gradient (MaxGradientLog), and the hooks that change gradients
(scale, clip, zero a layer), graded against the gradients autograd leaves in .grad and the same change made by
hand. m1-core-2 grades the same module with these checks and its own training checks."""
import csv
import math
import types

import pytest
import torch
from torch import nn

from grading import failing_checks

EXERCISE = "a06"
# a full backward hook on the first layer, whose input needs no gradient, warns that it sees only grad_output
pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing")


@pytest.fixture(scope="module")
def hooks(impl_for):
    return impl_for(EXERCISE)


class Gained(nn.Module):
    """A layer with a parameter of its own and a child layer: the root is a layer and a container at once."""

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.tensor([1.5, -0.5, 2.0], dtype=torch.float64))
        self.inner = nn.Linear(3, 3, dtype=torch.float64)
        self.register_buffer("offset", torch.ones(3, dtype=torch.float64))

    def forward(self, x):
        return self.inner(x * self.gain + self.offset)


def small_model():
    """Linear layers nested in containers, one with a parameter of its own, and parameter-free modules."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(4, 3, dtype=torch.float64), nn.Tanh(),
                         nn.Sequential(Gained(), nn.ReLU(), nn.Linear(3, 2, dtype=torch.float64)))


LAYERS = ["0", "2.0", "2.0.inner", "2.2"]


def batch(n=6):
    torch.manual_seed(2)
    return torch.randn(n, 4, dtype=torch.float64), torch.randn(n, 2, dtype=torch.float64)


def loss_of(model, x, y):
    return ((model(x) - y) ** 2).mean()


def output_gradients(model, x, y):
    """{layer name: gradient of the loss with respect to its output}, by autograd, without backward hooks."""
    outputs = {}
    handles = [m.register_forward_hook(lambda m, i, out, name=name: outputs.__setitem__(name, out))
               for name, m in model.named_modules() if name in LAYERS]
    loss = loss_of(model, x, y)
    for h in handles:
        h.remove()
    grads = torch.autograd.grad(loss, list(outputs.values()))
    return {name: g for name, g in zip(outputs, grads)}


def grads_of(model):
    return [p.grad.clone() for p in model.parameters()]


def check_parameter_layers(hooks):
    layers = hooks.parameter_layers(small_model())
    assert list(layers) == LAYERS, list(layers)
    assert isinstance(layers["2.0"], nn.Module) and isinstance(layers["2.2"], nn.Linear)


def check_log_matches_autograd(hooks):
    model, (x, y) = small_model(), batch()
    want = output_gradients(model, x, y)
    log = hooks.MaxGradientLog(model)
    loss_of(model, x, y).backward()
    expected = {name: {"output": want[name].abs().max().item()} for name in LAYERS}
    for name, layer in log.layers.items():
        for param_name, param in layer.named_parameters(recurse=False):
            expected[name][param_name] = param.grad.abs().max().item()
    assert log.current == expected
    log.end_step(7)
    assert log.current == {}
    assert log.rows == [{"step": 7, "layer": name, **expected[name]} for name in LAYERS]
    linear = ["step", "layer", "output", "weight", "bias"]
    assert [list(row) for row in log.rows] == [linear, ["step", "layer", "output", "gain"], linear, linear]


def check_log_leaves_gradients_alone(hooks):
    (x, y), plain = batch(), small_model()
    loss_of(plain, x, y).backward()
    model = small_model()
    hooks.MaxGradientLog(model)
    loss_of(model, x, y).backward()
    for got, want in zip(grads_of(model), grads_of(plain)):
        assert torch.equal(got, want)


def check_steps_keep_the_largest(hooks):
    # two backward passes in one step (accumulation): each column keeps its larger value
    model, (x, y) = small_model(), batch()
    log = hooks.MaxGradientLog(model)
    maxima = []
    for scale in (3.0, 1.0):
        model.zero_grad()
        (scale * loss_of(model, x, y)).backward()
        maxima.append({k: dict(v) for k, v in log.current.items()})
    log.end_step(0)
    for name in LAYERS:
        assert maxima[1][name]["output"] == maxima[0][name]["output"]  # the first, larger pass stays
        assert log.rows[LAYERS.index(name)] == {"step": 0, "layer": name, **maxima[0][name]}
    (0.01 * loss_of(model, x[:2], y[:2])).backward()  # gradients below 1
    log.end_step(1)
    log.end_step(2)  # a step without backward adds no rows
    assert [row["step"] for row in log.rows] == [0] * 4 + [1] * 4
    assert all(0 < row["output"] < 1 for row in log.rows[4:]), log.rows[4:]
    series = log.series()
    assert list(series) == LAYERS
    assert series["2.2"] == [log.rows[3]["output"], log.rows[7]["output"]]
    weights = log.series("weight")
    assert list(weights) == ["0", "2.0.inner", "2.2"] and weights["0"] == [log.rows[0]["weight"], log.rows[4]["weight"]]
    assert log.series("gain") == {"2.0": [log.rows[1]["gain"], log.rows[5]["gain"]]}
    assert log.series("inner.weight") == {}  # the root's own columns are output and gain
    model[0].bias.requires_grad_(False)  # a parameter that gets no gradient in a step: nan there
    loss_of(model, x, y).backward()
    log.end_step(3)
    assert math.isnan(log.series("bias")["0"][-1]) and log.series("bias")["2.2"][-1] > 0


class TwoHeads(nn.Module):
    """A layer with two outputs (a tuple): its "output" column is the first output's gradient."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64))

    def forward(self, x):
        return x @ self.weight, x @ self.weight.t()


def check_first_of_several_outputs(hooks):
    model, x = TwoHeads(), torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    log = hooks.MaxGradientLog(model)
    first, second = model(x)
    (first.sum() + (7 * second).sum()).backward()
    assert log.current[""]["output"] == 1.0


def check_empty_gradients_log_zero(hooks):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(0, 3), nn.Linear(3, 2))  # fc1's weight has no entries
    log = hooks.MaxGradientLog(model)
    model(torch.randn(5, 0)).sum().backward()
    log.end_step(0)
    assert log.rows[0]["weight"] == 0.0 and log.rows[0]["bias"] > 0
    log = hooks.MaxGradientLog(model)
    model(torch.randn(0, 0)).sum().backward()  # an empty batch: every gradient is empty or zero
    log.end_step(0)
    assert [row["output"] for row in log.rows] == [0.0, 0.0]


def check_csv_reads_back(hooks):
    import tempfile
    from pathlib import Path

    model, (x, y) = small_model(), batch()
    log = hooks.MaxGradientLog(model)
    for step in range(2):
        loss_of(model, x[step:], y[step:]).backward()
        log.end_step(step)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "deep" / "er" / "max_gradients.csv"
        assert log.write_csv(path) == path
        assert log.write_csv(path) == path  # again, into the folder that now exists
        with path.open() as f:
            rows = list(csv.DictReader(f))
        assert path.read_text().count("\n") == len(rows) + 1 and "\r" not in path.read_text()
    assert list(rows[0]) == ["step", "layer", "output", "weight", "bias", "gain"]
    assert len(rows) == len(log.rows) == 8
    for row, want in zip(rows, log.rows):
        assert int(row["step"]) == want["step"] and row["layer"] == want["layer"]
        for key in ("output", "weight", "bias", "gain"):
            assert (float(row[key]) if row[key] else None) == want.get(key)  # exactly, not rounded


def check_remove(hooks):
    model, (x, y) = small_model(), batch()
    log = hooks.MaxGradientLog(model)
    log.remove()
    log.remove()  # twice is harmless
    loss_of(model, x, y).backward()
    log.end_step(0)
    assert log.rows == [] and log.current == {}
    assert all(not m._backward_hooks for m in model.modules())
    assert all(not p._backward_hooks for p in model.parameters())


def check_errors_name_the_problem(hooks):
    with pytest.raises(ValueError, match="ReLU.*no parameters"):
        hooks.MaxGradientLog(nn.ReLU())
    layer = nn.Linear(2, 2)
    for factor in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match=f"factor.*{factor}"):
            hooks.scale_gradients(layer, factor)
    for limit in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=f"limit.*{limit}"):
            hooks.clip_gradients(layer, limit)


def modified_and_by_hand(hooks, register, by_hand, target="2.0"):
    """Gradients with `register(module)` on one layer, and plain gradients changed by hand on its parameters."""
    (x, y), model, plain = batch(), small_model(), small_model()
    module = dict(model.named_modules())[target]
    handles = register(module)
    loss_of(model, x, y).backward()
    loss_of(plain, x, y).backward()
    changed = {id(p) for p in dict(plain.named_modules())[target].parameters()}
    for p in plain.parameters():
        if id(p) in changed:
            by_hand(p.grad)
    return handles, grads_of(model), grads_of(plain)


def check_scale(hooks):
    for factor in (0.3, -2.0, 0.0):
        handles, got, want = modified_and_by_hand(hooks, lambda m: hooks.scale_gradients(m, factor),
                                                  lambda g: g.mul_(factor))
        assert len(handles) == 3  # gain and the inner layer's weight and bias
        for g, w in zip(got, want):
            assert torch.equal(g, w)


def check_clip(hooks):
    for limit in (0.05, 1e3):
        handles, got, want = modified_and_by_hand(hooks, lambda m: hooks.clip_gradients(m, limit),
                                                  lambda g: g.clamp_(-limit, limit), target="0")
        assert len(handles) == 2
        for g, w in zip(got, want):
            assert torch.equal(g, w)
    assert got[0].abs().max() > 0.05  # the big limit clipped nothing: the gradients are that large


def check_zero(hooks):
    handles, got, want = modified_and_by_hand(hooks, hooks.zero_gradients, lambda g: g.zero_(), target="2.2")
    assert len(handles) == 2
    for g, w in zip(got, want):
        assert torch.equal(g, w) and g.dtype == w.dtype
    assert got[-1].abs().sum() == 0 and got[0].abs().sum() > 0


def check_log_sees_what_came_before(hooks):
    # tensor hooks run in the order they were registered: a log after the clip sees the clipped gradient
    (x, y), limit = batch(), 0.01
    model = small_model()
    before = hooks.MaxGradientLog(model)
    hooks.clip_gradients(model, limit)
    after = hooks.MaxGradientLog(model)
    loss_of(model, x, y).backward()
    assert after.current["0"]["weight"] == limit and before.current["0"]["weight"] > limit
    assert after.current["0"]["output"] == before.current["0"]["output"]  # a layer's output is not a parameter


def check_removed_modifiers_restore_plain_gradients(hooks):
    (x, y), model, plain = batch(), small_model(), small_model()
    handles = hooks.scale_gradients(model, 3.0) + hooks.clip_gradients(model, 1e-3) + hooks.zero_gradients(model[0])
    hooks.remove(handles)
    assert handles == []
    hooks.remove(handles)
    loss_of(model, x, y).backward()
    loss_of(plain, x, y).backward()
    for g, w in zip(grads_of(model), grads_of(plain)):
        assert torch.equal(g, w)


CHECKS = [check_parameter_layers, check_log_matches_autograd, check_log_leaves_gradients_alone,
          check_steps_keep_the_largest, check_first_of_several_outputs, check_empty_gradients_log_zero, check_csv_reads_back, check_remove,
          check_errors_name_the_problem, check_scale, check_clip, check_zero, check_log_sees_what_came_before,
          check_removed_modifiers_restore_plain_gradients]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_hooks(hooks, check):
    check(hooks)


def variant(**changes):
    """The reference module with some of its functions or classes replaced."""
    from torchkata.autograd import hooks as reference

    return types.SimpleNamespace(**{**vars(reference), **changes})


def broken_variants():
    from torchkata.autograd import hooks as ref

    class LastBackwardOnly(ref.MaxGradientLog):  # forgets the earlier micro-batches of a step
        def _record(self, layer, column, grad):
            self.current.setdefault(layer, {})[column] = grad.abs().max().item() if grad.numel() else 0.0

    class SignedMax(ref.MaxGradientLog):  # max of the gradient, not of its size
        def _record(self, layer, column, grad):
            values = self.current.setdefault(layer, {})
            values[column] = max(values.get(column, 0.0), grad.max().item() if grad.numel() else 0.0)

    class InputNotOutput(ref.MaxGradientLog):  # logs grad_input, the gradient the layer passes back
        def _layer_hook(self, name):
            return lambda module, grad_input, grad_output: self._record(
                name, "output", grad_input[0] if grad_input[0] is not None else grad_output[0])

    class HooksStay(ref.MaxGradientLog):
        def remove(self):
            pass

    class RowsInBackwardOrder(ref.MaxGradientLog):
        def end_step(self, step):
            self.rows += [{"step": step, "layer": name, **values} for name, values in self.current.items()]
            self.current = {}

    def clip_by_norm(module, limit):
        if not limit > 0:
            raise ValueError(f"limit must be positive, got {limit}")
        return [p.register_hook(lambda g: g * min(1.0, limit / (g.norm().item() + 1e-12))) for p in module.parameters()]

    def zero_weights_only(module):  # leaves the biases learning
        return [p.register_hook(torch.zeros_like) for name, p in module.named_parameters() if "weight" in name]

    def scale_own_parameters_only(module, factor):
        ref.scale_gradients(nn.Module(), factor)  # validates
        return [p.register_hook(lambda g: g * factor) for p in module.parameters(recurse=False)]

    def remove_keeping_list(handles):
        for h in handles:
            h.remove()

    return {  # name: (variant, the check that must reject it)
        "last_backward_only": (variant(MaxGradientLog=LastBackwardOnly), "check_steps_keep_the_largest"),
        "signed_max": (variant(MaxGradientLog=SignedMax), "check_log_matches_autograd"),
        "grad_input_logged": (variant(MaxGradientLog=InputNotOutput), "check_log_matches_autograd"),
        "hooks_stay": (variant(MaxGradientLog=HooksStay), "check_remove"),
        "rows_in_backward_order": (variant(MaxGradientLog=RowsInBackwardOrder), "check_log_matches_autograd"),
        "clip_by_norm": (variant(clip_gradients=clip_by_norm), "check_clip"),
        "scale_own_parameters_only": (variant(scale_gradients=scale_own_parameters_only), "check_scale"),
        "remove_keeping_list": (variant(remove=remove_keeping_list), "check_removed_modifiers_restore_plain_gradients"),
        "zero_weights_only": (variant(zero_gradients=zero_weights_only), "check_zero"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_hooks_are_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
