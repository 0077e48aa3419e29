"""b02-10: gradient accumulation. The gradient accumulated over k micro-batches (each mean loss weighted by its
share of the samples) equals the big batch's gradient from autograd, for even and uneven splits, in float64 and
float32, whatever was in .grad before; with batch norm in training mode it does not, in eval mode it does."""
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks

EXERCISE = "b02-10"


@pytest.fixture(scope="module")
def accumulation(impl_for):
    return impl_for(EXERCISE)


def mlp(batch_norm=False, dtype=torch.float64):
    torch.manual_seed(0)
    norm = [nn.BatchNorm1d(8, dtype=dtype)] if batch_norm else []
    return nn.Sequential(nn.Linear(5, 8, dtype=dtype), *norm, nn.Tanh(), nn.Linear(8, 3, dtype=dtype))


def batch(n=12, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 5, generator=g, dtype=dtype), torch.randint(0, 3, (n,), generator=g)


def big_batch_gradients(model, loss_fn, x, y):
    return torch.autograd.grad(loss_fn(model(x), y), list(model.parameters()))


def check_equals_big_batch(accumulation):
    model, (x, y) = mlp(), batch(12)
    want = big_batch_gradients(model, F.cross_entropy, x, y)
    for k in (1, 2, 3, 5, 12):  # 5: micro-batches of 3, 3, 2, 2, 2
        got = accumulation.accumulated_gradients(model, F.cross_entropy, x, y, k)
        assert len(got) == len(want)
        for g, w, p in zip(got, want, model.parameters()):
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14, msg=lambda m: f"k={k}: {m}")
            assert torch.equal(p.grad, g)  # the accumulated gradient is left in .grad too


def check_uneven_and_mse(accumulation):
    model = mlp()
    x, targets = torch.randn(10, 5, dtype=torch.float64), torch.randn(10, 3, dtype=torch.float64)
    want = big_batch_gradients(model, F.mse_loss, x, targets)
    for g, w in zip(accumulation.accumulated_gradients(model, F.mse_loss, x, targets, 4), want):  # 3, 3, 2, 2
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)


def check_big_batch_lengths(accumulation):
    # lengths above 256 are distinct int objects each time: compare them with ==, not `is`
    model, (x, y) = mlp(), batch(300)
    want = big_batch_gradients(model, F.cross_entropy, x, y)
    for g, w in zip(accumulation.accumulated_gradients(model, F.cross_entropy, x, y, 3), want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)


def check_float32(accumulation):
    model, (x, y) = mlp(dtype=torch.float32), batch(64, dtype=torch.float32)
    want = big_batch_gradients(model, F.cross_entropy, x, y)
    for g, w in zip(accumulation.accumulated_gradients(model, F.cross_entropy, x, y, 4), want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-7)


def check_old_gradients_cleared_and_copies_returned(accumulation):
    model, (x, y) = mlp(), batch(12)
    want = big_batch_gradients(model, F.cross_entropy, x, y)
    for p in model.parameters():
        p.grad = torch.full_like(p, 5.0)
    got = accumulation.accumulated_gradients(model, F.cross_entropy, x, y, 3)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)
    got[0].zero_()
    assert next(model.parameters()).grad.abs().sum() > 0  # a copy, not .grad itself


def check_batch_norm(accumulation):
    # training mode: each micro-batch is normalised by its own statistics, so the gradient changes
    model, (x, y) = mlp(batch_norm=True), batch(16)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    want = big_batch_gradients(model, F.cross_entropy, x, y)
    model.load_state_dict(state)
    got = accumulation.accumulated_gradients(model, F.cross_entropy, x, y, 4)
    assert accumulation.max_difference(got, list(want)) > 1e-3
    # eval mode: fixed running statistics, every sample normalised alike: equal again
    model.eval()
    want = big_batch_gradients(model, F.cross_entropy, x, y)
    for g, w in zip(accumulation.accumulated_gradients(model, F.cross_entropy, x, y, 4), want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)


def check_max_difference(accumulation):
    a = [torch.tensor([1.0, -2.0]), torch.tensor([[0.5]])]
    b = [torch.tensor([1.5, -2.25]), torch.tensor([[-0.25]])]
    assert accumulation.max_difference(a, b) == 0.75
    assert accumulation.max_difference(b, a) == 0.75
    with pytest.raises(ValueError):
        accumulation.max_difference(a, b[:1])


def check_errors_name_the_problem(accumulation):
    model, (x, y) = mlp(), batch(6)
    with pytest.raises(ValueError, match="6.*5"):
        accumulation.accumulated_gradients(model, F.cross_entropy, x, y[:5], 2)
    with pytest.raises(ValueError, match="5.*6"):
        accumulation.accumulated_gradients(model, F.cross_entropy, x[:5], y, 2)
    for k in (0, 7, -1):
        with pytest.raises(ValueError, match=f"micro_batches.*{k}"):
            accumulation.accumulated_gradients(model, F.cross_entropy, x, y, k)


CHECKS = [check_equals_big_batch, check_uneven_and_mse, check_big_batch_lengths, check_float32, check_old_gradients_cleared_and_copies_returned,
          check_batch_norm, check_max_difference, check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_accumulation(accumulation, check):
    check(accumulation)


def broken_variants():
    from torchkata.autograd import accumulation as ref

    def variant(fn):
        return types.SimpleNamespace(**{**vars(ref), "accumulated_gradients": fn})

    def weighted(weight, clear=True, copy=True):
        def accumulated(model, loss_fn, inputs, targets, micro_batches):
            if clear:
                model.zero_grad()
            for x, y in zip(torch.tensor_split(inputs, micro_batches), torch.tensor_split(targets, micro_batches)):
                (loss_fn(model(x), y) * weight(len(x), len(inputs), micro_batches)).backward()
            return [p.grad.clone() if copy else p.grad for p in model.parameters()]
        return accumulated

    return {  # name: (variant, the check that must reject it)
        "one_over_k": (variant(weighted(lambda n, total, k: 1 / k)), "check_uneven_and_mse"),
        "not_weighted": (variant(weighted(lambda n, total, k: 1.0)), "check_equals_big_batch"),
        "old_gradients_kept": (variant(weighted(lambda n, total, k: n / total, clear=False)),
                               "check_old_gradients_cleared_and_copies_returned"),
        "grad_not_copied": (variant(weighted(lambda n, total, k: n / total, copy=False)),
                            "check_old_gradients_cleared_and_copies_returned"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_accumulation_is_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
