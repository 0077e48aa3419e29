"""b02-01: a custom autograd Function for ReLU (the one a05 builds, graded by a05's checks), here also inside a
network: a small MLP's gradients and a Hessian-vector product through it match the same MLP with F.relu."""
import pytest
import torch
import torch.nn.functional as F

from test_a05 import BROKEN, CHECKS as RELU_CHECKS, rejected

EXERCISE = "b02-01"


@pytest.fixture(scope="module")
def relu(impl_for):
    return impl_for(EXERCISE).relu


def mlp_loss(activation, params, x, y):
    w1, b1, w2, b2 = params
    return F.cross_entropy(activation(x @ w1 + b1) @ w2 + b2, y)


def mlp_case():
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randint(0, 3, (16,))
    params = [torch.randn(5, 7, dtype=torch.float64), torch.randn(7, dtype=torch.float64),
              torch.randn(7, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)]
    return [p.requires_grad_() for p in params], x, y


def check_mlp_gradients(relu):
    params, x, y = mlp_case()
    ours = torch.autograd.grad(mlp_loss(relu, params, x, y), params)
    want = torch.autograd.grad(mlp_loss(F.relu, params, x, y), params)
    for o, w in zip(ours, want):
        torch.testing.assert_close(o, w, rtol=1e-12, atol=1e-12)


def check_mlp_hessian_vector_product(relu):
    # double backward through the network: the Function's backward must itself be differentiable
    params, x, y = mlp_case()
    vectors = [torch.randn_like(p) for p in params]

    def hvp(activation):
        grads = torch.autograd.grad(mlp_loss(activation, params, x, y), params, create_graph=True)
        return torch.autograd.grad(sum((g * v).sum() for g, v in zip(grads, vectors)), params)

    for o, w in zip(hvp(relu), hvp(F.relu)):
        torch.testing.assert_close(o, w, rtol=1e-10, atol=1e-12)


def check_dead_units_get_no_gradient(relu):
    # a hidden unit whose pre-activation is <= 0 for the whole batch is dead: its incoming weights get exactly 0
    params, x, y = mlp_case()
    with torch.no_grad():
        params[1][0] = -1e3  # unit 0: negative for every input
        params[1][1] = 0.0
        params[0][:, 1] = 0.0  # unit 1: exactly 0 for every input, on the kink
    grad_w1 = torch.autograd.grad(mlp_loss(relu, params, x, y), params[0])[0]
    assert (grad_w1[:, :2] == 0).all(), grad_w1[:, :2]
    assert (grad_w1[:, 2:] != 0).any()


CHECKS = RELU_CHECKS + [check_mlp_gradients, check_mlp_hessian_vector_product, check_dead_units_get_no_gradient]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_relu_in_a_network(relu, check):
    check(relu)


NETWORK_REJECTS = {"one_at_zero": "check_dead_units_get_no_gradient", "passes_everything": "check_mlp_gradients",
                   "inverted_mask": "check_mlp_gradients",
                   "not_twice_differentiable": "check_mlp_hessian_vector_product"}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_relu_is_rejected(name):
    # a05's check for it, and for a wrong backward also one of this file's network checks
    assert rejected(CHECKS, name, BROKEN[name][1])
    if name in NETWORK_REJECTS:
        assert rejected(CHECKS, name, NETWORK_REJECTS[name])
