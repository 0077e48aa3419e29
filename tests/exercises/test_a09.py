"""a09: a simple RNN by hand, graded against nn.RNN with its weights copied in: tanh and relu, one or two layers,
batch_first or not, with or without bias, an initial state given or not; outputs, final states and gradients."""
import inspect
import itertools
import math
import types
from unittest import mock

import pytest
import torch
from torch import nn

from grading import failing_checks

EXERCISE = "a09"
INPUT, HIDDEN, LENGTH, BATCH = 3, 5, 4, 2
FORBIDDEN = ("nn.RNN(", "RNNBase", "rnn_tanh", "rnn_relu", "_VF", "RNNCell")
SETTINGS = list(itertools.product(("tanh", "relu"), (1, 2), (False, True)))  # nonlinearity, layers, batch_first


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def pair(impl, nonlinearity="tanh", layers=1, batch_first=False, bias=True, dtype=torch.float64):
    """(ours, nn.RNN) with nn.RNN's weights copied into ours."""
    theirs = nn.RNN(INPUT, HIDDEN, layers, nonlinearity=nonlinearity, bias=bias, batch_first=batch_first).to(dtype)
    ours = impl.SimpleRNN(INPUT, HIDDEN, layers, nonlinearity=nonlinearity, bias=bias, batch_first=batch_first).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def inputs(layers, batch_first, dtype=torch.float64, scale=1.0):
    x = torch.randn((BATCH, LENGTH, INPUT) if batch_first else (LENGTH, BATCH, INPUT), dtype=dtype) * scale
    return x, torch.randn(layers, BATCH, HIDDEN, dtype=dtype)


def check_matches_nn_rnn(impl):
    for (nonlinearity, layers, batch_first), bias in itertools.product(SETTINGS, (True, False)):
        ours, theirs = pair(impl, nonlinearity, layers, batch_first, bias)
        x, h0 = inputs(layers, batch_first, scale=2.0)
        for state in (None, h0):
            (out, h_n), (want_out, want_h) = ours(x, state), theirs(x, state)
            assert out.shape == want_out.shape and h_n.shape == want_h.shape
            torch.testing.assert_close(out, want_out, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(h_n, want_h, rtol=1e-10, atol=1e-12)


def check_unbatched(impl):
    for nonlinearity, layers, batch_first in SETTINGS[:4]:
        ours, theirs = pair(impl, nonlinearity, layers, batch_first)
        x, h0 = torch.randn(LENGTH, INPUT, dtype=torch.float64), torch.randn(layers, HIDDEN, dtype=torch.float64)
        for state in (None, h0):
            for got, want in zip(ours(x, state), theirs(x, state), strict=True):
                assert got.shape == want.shape
                torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def check_gradients_match(impl):
    for nonlinearity, layers, batch_first in SETTINGS:
        ours, theirs = pair(impl, nonlinearity, layers, batch_first)
        x, h0 = inputs(layers, batch_first)
        grads = []
        for model in (ours, theirs):
            leaves = [x.clone().requires_grad_(), h0.clone().requires_grad_(), *model.parameters()]
            out, h_n = model(*leaves[:2])
            loss = (out * torch.linspace(-1, 2, out.numel(), dtype=out.dtype).reshape(out.shape)).sum() + h_n.pow(2).sum()
            grads.append(torch.autograd.grad(loss, leaves))
        for got, want in zip(*grads, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


def check_gradcheck(impl):
    for nonlinearity, layers in (("tanh", 2), ("relu", 1)):
        ours, _ = pair(impl, nonlinearity, layers)
        x = torch.randn(3, 2, INPUT, dtype=torch.float64, requires_grad=True)
        h0 = torch.randn(layers, 2, HIDDEN, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(ours, (x, h0))


def check_float32_and_non_contiguous(impl):
    ours, theirs = pair(impl, "tanh", 2, batch_first=True, dtype=torch.float32)
    x = torch.randn(INPUT, LENGTH, BATCH).permute(2, 1, 0)  # (N, L, input), not contiguous
    assert not x.is_contiguous()
    for got, want in zip(ours(x), theirs(x)):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    empty = torch.randn(0, LENGTH, INPUT)  # an empty batch
    for got, want in zip(ours(empty), theirs(empty)):
        assert got.shape == want.shape


def check_parameters(impl):
    for layers, bias in [(1, True), (2, True), (2, False)]:
        ours, theirs = impl.SimpleRNN(INPUT, HIDDEN, layers, bias=bias), nn.RNN(INPUT, HIDDEN, layers, bias=bias)
        assert [(k, v.shape) for k, v in ours.named_parameters()] == [(k, v.shape) for k, v in theirs.named_parameters()]
    defaults = impl.SimpleRNN(INPUT, HIDDEN)  # one layer, tanh, bias, sequence first
    theirs = nn.RNN(INPUT, HIDDEN)
    defaults.load_state_dict(theirs.state_dict())
    x = torch.randn(LENGTH, BATCH, INPUT)
    torch.testing.assert_close(defaults(x)[0], theirs(x)[0])
    # nn.RNN's initialisation: every weight and bias uniform in ±1/sqrt(hidden)
    big = impl.SimpleRNN(64, 256, num_layers=2)
    bound = 1 / math.sqrt(256)
    for name, p in big.state_dict().items():
        assert p.abs().max() <= bound, name
        if p.numel() > 1000:
            assert abs(float(p.std()) - bound / math.sqrt(3)) < 0.05 * bound, name
            assert abs(float(p.mean())) < 0.05 * bound, name


def check_shape_errors(impl):
    model = impl.SimpleRNN(INPUT, HIDDEN, num_layers=2, batch_first=True)
    for x in (torch.randn(BATCH, LENGTH, 4), torch.randn(BATCH, LENGTH, 2), torch.randn(LENGTH * INPUT),
              torch.randn(1, BATCH, LENGTH, INPUT)):
        with pytest.raises(ValueError) as error:
            model(x)
        assert str(tuple(x.shape)) in str(error.value) and str(INPUT) in str(error.value), str(error.value)
    for h0 in (torch.randn(1, BATCH, HIDDEN), torch.randn(2, LENGTH, HIDDEN), torch.randn(2, BATCH, 4)):
        with pytest.raises(ValueError) as error:
            model(torch.randn(BATCH, LENGTH, INPUT), h0)
        assert f"(2, {BATCH}, {HIDDEN})" in str(error.value) and str(tuple(h0.shape)) in str(error.value), str(error.value)
    with pytest.raises(ValueError, match=r"\(2, 5\)"):  # unbatched input wants an unbatched state
        model(torch.randn(LENGTH, INPUT), torch.randn(2, 1, HIDDEN))
    with pytest.raises(ValueError, match="step"):
        model(torch.randn(BATCH, 0, INPUT))
    with pytest.raises(ValueError, match="step"):
        impl.SimpleRNN(INPUT, HIDDEN)(torch.randn(0, BATCH, INPUT))
    wide = impl.SimpleRNN(300, 4)  # sizes beyond the small ints Python caches: compared by value, not identity
    assert wide(torch.randn(LENGTH, BATCH, 300))[0].shape == (LENGTH, BATCH, 4)
    with pytest.raises(ValueError, match="sigmoid"):
        impl.SimpleRNN(INPUT, HIDDEN, nonlinearity="sigmoid")


def check_no_builtin_rnn(impl):
    source = inspect.getsource(impl)
    for builtin in FORBIDDEN:
        assert builtin not in source, builtin
    refuse = mock.Mock(side_effect=AssertionError("a built-in RNN was called"))
    with mock.patch("torch.rnn_tanh", refuse), mock.patch("torch.rnn_relu", refuse), \
            mock.patch("torch.rnn_tanh_cell", refuse), mock.patch("torch.rnn_relu_cell", refuse):
        impl.SimpleRNN(INPUT, HIDDEN)(torch.randn(LENGTH, BATCH, INPUT))


CHECKS = [check_matches_nn_rnn, check_unbatched, check_gradients_match, check_gradcheck, check_float32_and_non_contiguous,
          check_parameters, check_shape_errors, check_no_builtin_rnn]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_simple_rnn(impl, check):
    check(impl)


def broken(reference, **flaw):
    """The reference RNN with one flaw: a forward written out here, step by step."""
    class Broken(reference.SimpleRNN):
        def forward(self, x, h0=None):
            if x.dim() != 3 or x.shape[-1] != self.input_size:
                raise ValueError(f"input {self.input_size} {tuple(x.shape)}")
            if self.batch_first and not flaw.get("ignore_batch_first"):
                x = x.transpose(0, 1)
            if x.shape[0] == 0:
                raise ValueError("no step")
            want = (self.num_layers, x.shape[1], self.hidden_size)
            if h0 is not None and tuple(h0.shape) != want:
                raise ValueError(f"h0 {want} {tuple(h0.shape)}")
            if h0 is None or flaw.get("ignore_h0"):
                h0 = x.new_zeros(want)
            act = torch.relu if self.nonlinearity == "relu" and not flaw.get("always_tanh") else torch.tanh
            last = []
            for k in range(self.num_layers):
                p = {n: getattr(self, f"{n}_l{k}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                     if hasattr(self, f"{n}_l{k}")}
                h, states = h0[k], []
                for x_t in x:
                    pre = x_t @ p["weight_ih"].T + h @ p["weight_hh"].T
                    if self.bias:
                        pre = pre + p["bias_ih"] + (0 if flaw.get("no_hidden_bias") else p["bias_hh"])
                    h = act(pre)
                    states.append(h)
                    h = h.detach() if flaw.get("detach_state") else h
                x = torch.stack(states)
                last.append(h)
            h_n = torch.stack(last[-1:] if flaw.get("last_layer_state_only") else last)
            return (x.transpose(0, 1) if self.batch_first and not flaw.get("ignore_batch_first") else x), h_n
    return types.SimpleNamespace(SimpleRNN=Broken)


FLAWS = {  # flaw: the check that must reject it
    "no_hidden_bias": "check_matches_nn_rnn",
    "ignore_h0": "check_matches_nn_rnn",
    "always_tanh": "check_matches_nn_rnn",
    "last_layer_state_only": "check_matches_nn_rnn",
    "ignore_batch_first": "check_matches_nn_rnn",
    "detach_state": "check_gradients_match",
}


@pytest.mark.suite_check
@pytest.mark.parametrize("flaw", FLAWS)
def test_broken_rnn_is_rejected(impl, flaw):
    check = next(c for c in CHECKS if c.__name__ == FLAWS[flaw])
    assert failing_checks([check], broken(impl, **{flaw: True})) == [FLAWS[flaw]]
