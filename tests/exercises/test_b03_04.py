"""b03-04: batch normalisation by hand against nn.BatchNorm1d: outputs in training and eval mode, the running
mean and (unbiased) variance after several batches for several momenta (None: the cumulative average), with
and without affine, [N, C] and [N, C, L] inputs, gradients of input, weight and bias, gradcheck in float64, and
errors for a wrong shape or a single value per channel in training."""
import ast
import inspect
import types

import pytest
import torch
from torch import nn

from grading import failing_checks

EXERCISE = "b03-04"
TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def bn(impl_for):
    return impl_for(EXERCISE)


def pair(bn, channels=5, **options):
    torch.manual_seed(0)
    ours, theirs = bn.BatchNorm1d(channels, **options), nn.BatchNorm1d(channels, **options)
    if theirs.affine:  # weights that are not ones and zeros, the same in both
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 2.0)
            theirs.bias.uniform_(-1.0, 1.0)
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)
    return ours, theirs


def batches(shape, count=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) * 3 + torch.linspace(-2, 2, shape[1]).view(1, -1, *[1] * (len(shape) - 2))
            for _ in range(count)]


def check_training_and_running_stats(bn):
    for shape in [(16, 5), (8, 5, 7), (2, 5)]:
        for momentum in (0.1, 0.5, None):
            ours, theirs = pair(bn, momentum=momentum)
            for x in batches(shape):
                torch.testing.assert_close((ours(x), ours.running_mean, ours.running_var),
                                           (theirs(x), theirs.running_mean, theirs.running_var), **TOL)
            assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 4


def check_eval_uses_running_stats(bn):
    for shape in [(16, 5), (8, 5, 7)]:
        ours, theirs = pair(bn, momentum=0.3)
        for x in batches(shape):
            ours(x), theirs(x)
        ours.eval(), theirs.eval()
        x = batches((1, 5, 3) if len(shape) == 3 else (1, 5), 1, seed=2)[0]  # one sample is fine in eval
        torch.testing.assert_close(ours(x), theirs(x), **TOL)
        before = ours.running_mean.clone()
        ours(x)
        assert torch.equal(ours.running_mean, before) and int(ours.num_batches_tracked) == 4  # eval changes nothing


def check_defaults_and_affine(bn):
    ours, theirs = bn.BatchNorm1d(6), nn.BatchNorm1d(6)
    assert ours.eps == theirs.eps and ours.momentum == theirs.momentum
    assert {n for n, _ in ours.named_parameters()} == {"weight", "bias"}
    assert torch.equal(ours.weight, torch.ones(6)) and torch.equal(ours.bias, torch.zeros(6))
    assert torch.equal(ours.running_mean, torch.zeros(6)) and torch.equal(ours.running_var, torch.ones(6))
    assert set(ours.state_dict()) == set(theirs.state_dict())
    plain = bn.BatchNorm1d(6, affine=False)
    assert list(plain.parameters()) == []
    assert set(plain.state_dict()) == set(nn.BatchNorm1d(6, affine=False).state_dict())
    for options in [dict(affine=False), dict(eps=0.5), dict(eps=0.5, affine=False, momentum=0.9)]:
        ours, theirs = pair(bn, **options)
        for x in batches((10, 5), 2):
            torch.testing.assert_close(ours(x), theirs(x), **TOL)
        ours.eval(), theirs.eval()
        torch.testing.assert_close(ours(x), theirs(x), **TOL)


def check_gradients(bn):
    for shape in [(12, 5), (6, 5, 4)]:
        ours, theirs = pair(bn)
        x = batches(shape, 1)[0]
        upstream = torch.randn(shape)
        grads = []
        for module in (ours, theirs):
            xi = x.clone().requires_grad_()
            (module(xi) * upstream).sum().backward()
            grads.append((xi.grad, module.weight.grad, module.bias.grad))
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, **TOL)
    x = torch.randn(6, 3, 2, dtype=torch.float64, requires_grad=True)
    w = torch.rand(3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    mean, var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x, w, b: bn.batch_norm(x, mean.clone(), var.clone(), w, b, True), (x, w, b))
    assert torch.autograd.gradcheck(lambda x, w, b: bn.batch_norm(x, mean + 1, var * 2, w, b, False), (x, w, b))


def check_function_defaults(bn):
    # batch_norm's own defaults are F.batch_norm's: momentum 0.1, eps 1e-5
    x = batches((6, 3), 1)[0] * 1e-3  # a variance of ~1e-5: eps matters
    mean, var = torch.zeros(3), torch.ones(3)
    theirs_mean, theirs_var = mean.clone(), var.clone()
    out = bn.batch_norm(x, mean, var, None, None, True)
    expected = torch.nn.functional.batch_norm(x, theirs_mean, theirs_var, training=True)
    torch.testing.assert_close(out, expected, **TOL)
    torch.testing.assert_close((mean, var), (theirs_mean, theirs_var), **TOL)


def check_many_channels(bn):
    ours, theirs = pair(bn, channels=300)  # beyond the small ints that Python keeps as single objects
    x = torch.randn(4, 300)
    torch.testing.assert_close(ours(x), theirs(x), **TOL)


def check_layouts_and_dtypes(bn):
    ours, theirs = pair(bn)
    x = batches((5, 9), 1)[0].t()  # non-contiguous [9, 5]
    torch.testing.assert_close(ours(x), theirs(x), **TOL)
    ours64, theirs64 = pair(bn)
    ours64.double(), theirs64.double()
    x = batches((7, 5, 3), 1)[0].double()
    torch.testing.assert_close(ours64(x), theirs64(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours64.running_var, theirs64.running_var, rtol=1e-12, atol=1e-12)


def check_bad_input(bn):
    module = bn.BatchNorm1d(4)
    for shape in [(8, 3), (8, 5, 2), (4,), (2, 4, 3, 3)]:
        with pytest.raises(ValueError, match=r"\[N, 4"):
            module(torch.randn(shape))
    for shape in [(1, 4), (1, 4, 1)]:
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            module(torch.randn(shape))


CHECKS = [check_training_and_running_stats, check_eval_uses_running_stats, check_defaults_and_affine,
          check_gradients, check_function_defaults, check_many_channels, check_layouts_and_dtypes, check_bad_input]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_batch_norm(bn, check):
    check(bn)


def test_no_builtin_batch_norm_in_reference():
    from torchkata.nn import batch_norm as ref

    tree = ast.parse(inspect.getsource(ref))
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not {name for name in used if "norm" in name.lower()}, used  # F.batch_norm, nn.BatchNorm1d, layer_norm...


def broken_variants():
    from torchkata.nn import batch_norm as ref

    def with_fn(fn):
        module = types.SimpleNamespace(**vars(ref))

        class BatchNorm1d(ref.BatchNorm1d):
            def forward(self, x):
                momentum = self.momentum
                if self.training:
                    self.num_batches_tracked += 1
                    momentum = 1.0 / float(self.num_batches_tracked) if momentum is None else momentum
                return fn(x, self.running_mean, self.running_var, self.weight, self.bias, self.training, momentum,
                          self.eps)

        module.BatchNorm1d, module.batch_norm = BatchNorm1d, fn
        return module

    def biased_running_var(x, mean, var, w, b, training, momentum=0.1, eps=1e-5):
        if training:  # the batch's variance as it normalises: biased
            n = x.numel() // x.shape[1]
            out = ref.batch_norm(x, mean, var, w, b, training, momentum, eps)
            var.sub_(momentum * x.var([0, 2] if x.dim() == 3 else [0]) / n)
            return out
        return ref.batch_norm(x, mean, var, w, b, training, momentum, eps)

    def swapped_momentum(x, mean, var, w, b, training, momentum=0.1, eps=1e-5):
        return ref.batch_norm(x, mean, var, w, b, training, 1 - momentum, eps)

    def batch_stats_in_eval(x, mean, var, w, b, training, momentum=0.1, eps=1e-5):
        return ref.batch_norm(x, mean.clone(), var.clone(), w, b, True, momentum, eps)

    def unbiased_normalisation(x, mean, var, w, b, training, momentum=0.1, eps=1e-5):
        out = ref.batch_norm(x, mean, var, w, b, training, momentum, eps)
        if not training:
            return out
        n = x.numel() // x.shape[1]
        shape = [1, -1, 1] if x.dim() == 3 else [1, -1]
        return ((out - b.view(shape)) * (n - 1) ** 0.5 / n ** 0.5) + b.view(shape) if w is not None else out

    return {  # name: (variant, the check that must reject it)
        "biased_running_var": (with_fn(biased_running_var), "check_training_and_running_stats"),
        "swapped_momentum": (with_fn(swapped_momentum), "check_training_and_running_stats"),
        "batch_stats_in_eval": (with_fn(batch_stats_in_eval), "check_eval_uses_running_stats"),
        "unbiased_normalisation": (with_fn(unbiased_normalisation), "check_training_and_running_stats"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_batch_norm_is_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
