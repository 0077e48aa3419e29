"""b02-04: SGD with momentum written by hand as a torch.optim.Optimizer, graded step for step against
torch.optim.SGD (momentum, nesterov, dampening, weight decay, maximize, parameter groups, state_dict)."""
import copy
import functools
import inspect

import pytest
import torch

from grading import failing_checks

EXERCISE = "b02-04"
STEPS = 100
# every option of torch.optim.SGD, alone and together
CONFIGS = [dict(lr=0.05), dict(lr=0.05, momentum=0.9), dict(lr=0.03, momentum=0.8, nesterov=True),
           dict(lr=0.05, momentum=0.9, dampening=0.5), dict(lr=0.05, weight_decay=0.1),
           dict(lr=0.02, momentum=0.9, dampening=0.3, weight_decay=0.05),
           dict(lr=0.02, momentum=0.7, nesterov=True, weight_decay=0.2, maximize=True),
           dict(lr=0.05, momentum=0.5, maximize=True)]


@pytest.fixture(scope="module")
def sgd(impl_for):
    return impl_for(EXERCISE).SGD


def make_params(dtype=torch.float64, seed=0):
    """A non-contiguous matrix (a transposed leaf), a scalar and an empty tensor."""
    g = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(3, 4, generator=g).t(), torch.randn((), generator=g), torch.empty(0, 3)]
    return [t.to(dtype).requires_grad_() for t in tensors]


@functools.cache
def noise(step, shape, dtype):
    return torch.randn(shape, generator=torch.Generator().manual_seed(1000 + step), dtype=dtype)


def gradient_of(p, step):
    """A gradient field that depends on the parameter (so the trajectory feeds back into it) and on the step
    (like a new batch's), set by hand: 1600 steps of autograd would cost the grader seconds."""
    return torch.tanh(p).add_(p, alpha=0.5).add_(noise(step, p.shape, p.dtype))


def train(make_optimizer, params, steps, first=0):
    opt = make_optimizer(params)
    for step in range(first, first + steps):
        opt.zero_grad()
        for p in params:
            p.grad = gradient_of(p.detach(), step)
        opt.step()
    return opt


def run_pair(sgd, options, dtype=torch.float64, steps=STEPS, groups=None):
    """Parameters after `steps` steps of ours and of torch.optim.SGD from the same start."""
    ours, theirs = make_params(dtype), make_params(dtype)
    as_groups = groups or (lambda ps: ps)
    opt_ours = train(lambda ps: sgd(as_groups(ps), **options), ours, steps)
    opt_theirs = train(lambda ps: torch.optim.SGD(as_groups(ps), **options, foreach=False), theirs, steps)
    return ours, theirs, opt_ours, opt_theirs


def assert_params_close(ours, theirs, rtol=1e-10, atol=1e-12):
    for o, t in zip(ours, theirs):
        torch.testing.assert_close(o.detach(), t.detach(), rtol=rtol, atol=atol)


def check_matches_torch_float64(sgd):
    for options in CONFIGS:
        ours, theirs, _, _ = run_pair(sgd, options)
        assert_params_close(ours, theirs)
        assert not torch.equal(ours[0].detach(), make_params()[0].detach()), "the parameters never moved"


def check_matches_torch_float32(sgd):
    for options in CONFIGS[1::2]:
        ours, theirs, _, _ = run_pair(sgd, options, dtype=torch.float32, steps=30)
        assert all(o.dtype == torch.float32 for o in ours)
        assert_params_close(ours, theirs, rtol=1e-5, atol=1e-6)


def check_momentum_buffer_in_state(sgd):
    # the buffer lives in optimizer.state[p]["momentum_buffer"], the same name and value as torch's
    for options in (CONFIGS[3], CONFIGS[6]):
        ours, theirs, opt_ours, opt_theirs = run_pair(sgd, options, steps=5)
        for o, t in zip(ours, theirs):
            torch.testing.assert_close(opt_ours.state[o]["momentum_buffer"], opt_theirs.state[t]["momentum_buffer"])
    ours, _, opt_ours, _ = run_pair(sgd, CONFIGS[0], steps=3)  # no momentum: no buffer to keep
    assert all("momentum_buffer" not in opt_ours.state[p] for p in ours)


def check_parameter_groups(sgd):
    # each group keeps its own lr, momentum and decay; the defaults fill what a group leaves out
    def groups(ps):
        return [{"params": ps[:1], "lr": 0.01, "weight_decay": 0.3, "nesterov": True}, {"params": ps[1:], "momentum": 0.5}]
    ours, theirs, opt_ours, _ = run_pair(sgd, dict(lr=0.07, momentum=0.9, dampening=0.0), groups=groups)
    assert_params_close(ours, theirs)
    assert [g["lr"] for g in opt_ours.param_groups] == [0.01, 0.07]


def check_lr_change_is_used(sgd):
    # a scheduler changes param_groups[i]["lr"] between steps: the next step must use the new value
    ours, theirs = make_params(), make_params()
    for params, make in ((ours, sgd), (theirs, lambda ps, **o: torch.optim.SGD(ps, **o, foreach=False))):
        opt = make(params, lr=0.1, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.3)
        for step in range(10):
            opt.zero_grad()
            for p in params:
                p.grad = gradient_of(p.detach(), step)
            opt.step()
            sched.step()
    assert_params_close(ours, theirs)


def check_state_dict_round_trip(sgd):
    options = dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)
    straight = make_params()
    train(lambda ps: sgd(ps, **options), straight, 20)
    resumed = make_params()
    saved = copy.deepcopy(train(lambda ps: sgd(ps, **options), resumed, 10).state_dict())
    fresh = sgd(resumed, lr=1.0)  # hyper-parameters too come back from the state_dict
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == 0.05
    train(lambda ps: fresh, resumed, 10, first=10)
    assert_params_close(resumed, straight, rtol=0, atol=0)


def check_loads_torch_state_dict(sgd):
    # the same state layout as torch.optim.SGD: its state_dict resumes in ours, and ours in torch's
    options = dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)
    want = make_params()
    train(lambda ps: torch.optim.SGD(ps, **options), want, 16)
    got = make_params()
    saved = train(lambda ps: torch.optim.SGD(ps, **options), got, 8).state_dict()
    ours = sgd(got, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)
    ours.load_state_dict(copy.deepcopy(saved))
    train(lambda ps: ours, got, 8, first=8)
    assert_params_close(got, want)
    back = make_params()
    saved = train(lambda ps: sgd(ps, **options), back, 8).state_dict()
    theirs = torch.optim.SGD(back, **options)
    theirs.load_state_dict(copy.deepcopy(saved))
    train(lambda ps: theirs, back, 8, first=8)
    assert_params_close(back, want)


def check_defaults_match_torch(sgd):
    p = make_params()
    ours, theirs = sgd(p), torch.optim.SGD(make_params())
    for key in ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"):
        assert ours.defaults[key] == theirs.defaults[key], key
    assert isinstance(ours, torch.optim.Optimizer)
    ours, theirs = make_params(), make_params()
    train(sgd, ours, 3)  # the default lr
    train(torch.optim.SGD, theirs, 3)
    assert_params_close(ours, theirs)
    ours, theirs = make_params(), make_params()
    train(lambda ps: sgd(ps, 0.1, 0.9, 0.2, 0.05), ours, 10)  # positional order as torch's
    train(lambda ps: torch.optim.SGD(ps, 0.1, 0.9, 0.2, 0.05), theirs, 10)
    assert_params_close(ours, theirs)


def assert_leaves_grad_and_gradless_params_alone(make_optimizer, label="step"):
    """A parameter without a gradient neither moves nor gets state, and p.grad stays what backward wrote (a14's
    optimizers are graded with this too)."""
    params = make_params()
    frozen = params[1]
    opt = make_optimizer(params)
    before = frozen.detach().clone()
    for p in params:
        p.grad = gradient_of(p.detach(), 0)
    frozen.grad = None
    grads = [p.grad.clone() if p.grad is not None else None for p in params]
    opt.step()
    assert torch.equal(frozen.detach(), before) and frozen not in opt.state, "a parameter without grad moved"
    for p, g in zip(params, grads):
        if g is not None:
            assert torch.equal(p.grad, g), f"{label} changed p.grad"


def check_leaves_grad_and_gradless_params_alone(sgd):
    assert_leaves_grad_and_gradless_params_alone(lambda ps: sgd(ps, lr=0.1, momentum=0.9, weight_decay=0.5))


def check_closure(sgd):
    params = make_params()
    opt = sgd(params, lr=0.1)
    calls = []

    def closure():
        opt.zero_grad()
        loss = sum(p.pow(2).sum() for p in params)
        loss.backward()
        calls.append(torch.is_grad_enabled())
        return loss
    with torch.no_grad():
        loss = opt.step(closure)
    assert calls == [True], "the closure must run once, with grad enabled"
    assert torch.equal(loss, sum(p.pow(2).sum() for p in make_params())), "step(closure) returns the closure's loss"
    assert opt.step() is None


DECOUPLED = [dict(lr=0.05, momentum=0.9, weight_decay=0.1), dict(lr=0.03, momentum=0.8, nesterov=True, weight_decay=1.0),
             dict(lr=0.05, momentum=0.6, dampening=0.4, weight_decay=0.2, maximize=True), dict(lr=0.1, weight_decay=0.5)]


def sgdw_by_formula(params, steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    """Decoupled decay written out: p <- p (1 - lr wd), then the momentum step on the raw gradient."""
    params = [p.detach().clone() for p in params]
    buffers = [None] * len(params)
    for step in range(steps):
        for i, p in enumerate(params):
            g = gradient_of(p, step) * (-1 if maximize else 1)
            p *= 1 - lr * weight_decay
            if momentum:
                buffers[i] = g.clone() if buffers[i] is None else momentum * buffers[i] + (1 - dampening) * g
                g = g + momentum * buffers[i] if nesterov else buffers[i]
            p -= lr * g
    return params


def check_decoupled_matches_formula(sgd):
    # decoupled decay (b02-09's subject, in the same module): p (1 - lr wd) before the step, the momentum on g alone
    for options in DECOUPLED:
        params = make_params()
        want = sgdw_by_formula(params, 40, **options)
        train(lambda ps: sgd(ps, **options, decoupled_weight_decay=True), params, 40)
        for p, w in zip(params, want):
            torch.testing.assert_close(p.detach(), w, rtol=1e-10, atol=1e-12)


def check_non_finite_parameters_like_torch(sgd):
    # inf and nan stay what torch makes of them: no decay term (0 * inf = nan) when weight_decay is 0
    for options in (dict(lr=0.1, momentum=0.9), dict(lr=0.1, weight_decay=0.1)):
        ours, theirs = (torch.tensor([float("inf"), -float("inf"), float("nan"), 1.0], requires_grad=True)
                        for _ in range(2))
        for p, opt in ((ours, sgd([ours], **options)), (theirs, torch.optim.SGD([theirs], **options))):
            for _ in range(2):
                p.grad = torch.ones(4)
                opt.step()
        torch.testing.assert_close(ours.detach(), theirs.detach(), equal_nan=True)


def check_zero_lr_and_momentum_edges(sgd):
    for options in (dict(lr=0.0, momentum=0.9), dict(lr=0.1, momentum=0.0, dampening=0.7), dict(lr=0.01, weight_decay=1.0)):
        ours, theirs, _, _ = run_pair(sgd, options, steps=5)
        assert_params_close(ours, theirs)


def check_errors_name_the_problem(sgd):
    p = make_params()
    for options, message in [(dict(lr=-0.1), "learning rate: -0.1"), (dict(lr=0.1, momentum=-0.5), "momentum value: -0.5"),
                             (dict(lr=0.1, weight_decay=-1e-4), "weight_decay value: -0.0001"),
                             (dict(lr=0.1, nesterov=True), "Nesterov"),
                             (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "zero dampening"),
                             (dict(lr=0.1, momentum=0.9, dampening=-0.1, nesterov=True), "zero dampening")]:
        with pytest.raises(ValueError, match=message):
            sgd(p, **options)
    for options in (dict(lr=0.0), dict(lr=0.1, momentum=0.9, nesterov=True)):  # the boundaries are allowed
        sgd(p, **options)


CHECKS = [check_matches_torch_float64, check_matches_torch_float32, check_momentum_buffer_in_state,
          check_parameter_groups, check_lr_change_is_used, check_state_dict_round_trip, check_loads_torch_state_dict,
          check_defaults_match_torch, check_leaves_grad_and_gradless_params_alone, check_closure,
          check_zero_lr_and_momentum_edges, check_non_finite_parameters_like_torch, check_decoupled_matches_formula,
          check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_sgd(sgd, check):
    check(sgd)


def broken_sgd(**bugs):
    """A small SGD with one deliberate mistake switched on by name."""
    class Broken(torch.optim.Optimizer):
        def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                     maximize=False, decoupled_weight_decay=False):
            if lr < 0 or momentum < 0 or weight_decay < 0:
                raise ValueError(f"Invalid learning rate: {lr} momentum value: {momentum} "
                                 f"weight_decay value: {weight_decay}")
            if nesterov and (momentum <= 0 or dampening != 0) and not bugs.get("no_nesterov_check"):
                raise ValueError("Nesterov momentum requires a momentum and zero dampening")
            super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                          nesterov=nesterov, maximize=maximize,
                                          decoupled_weight_decay=decoupled_weight_decay))
            self.buffers = {}

        @torch.no_grad()
        def step(self, closure=None):
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            for group in self.param_groups:
                lr = self.defaults["lr"] if bugs.get("default_lr") else group["lr"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = p.grad if bugs.get("ignore_maximize") or not group["maximize"] else -p.grad
                    decay = group["weight_decay"]
                    decoupled = group.get("decoupled_weight_decay") and not bugs.get("decoupled_ignored")
                    if decay and decoupled and not bugs.get("decay_after_step"):
                        p.mul_(1 - (1.0 if bugs.get("decay_without_lr") else lr) * decay)
                    elif decay and not decoupled:
                        grad = grad.add_(p, alpha=decay) if bugs.get("decay_in_place") else grad + decay * p
                    if group["momentum"]:
                        store = self.buffers if bugs.get("buffer_outside_state") else self.state[p]
                        buf = store.get(id(p) if bugs.get("buffer_outside_state") else "momentum_buffer")
                        if buf is None:
                            buf = grad * (1 - group["dampening"]) if bugs.get("damp_first_step") else grad.clone()
                        else:
                            buf.mul_(group["momentum"]).add_(grad, alpha=1 - group["dampening"])
                        store[id(p) if bugs.get("buffer_outside_state") else "momentum_buffer"] = buf
                        nesterov = group["nesterov"] and not bugs.get("nesterov_as_plain")
                        grad = grad + group["momentum"] * buf if nesterov else buf
                    p.add_(grad, alpha=-lr)
                    if decay and decoupled and bugs.get("decay_after_step"):
                        p.mul_(1 - lr * decay)
            return loss
    return Broken


BROKEN = {  # name: the check that must reject it
    "damp_first_step": "check_matches_torch_float64",
    "nesterov_as_plain": "check_matches_torch_float64",
    "ignore_maximize": "check_matches_torch_float64",
    "default_lr": "check_parameter_groups",
    "buffer_outside_state": "check_state_dict_round_trip",
    "decay_in_place": "check_leaves_grad_and_gradless_params_alone",
    "no_nesterov_check": "check_errors_name_the_problem",
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_sgd_is_rejected(name):
    check = next(c for c in CHECKS if c.__name__ == BROKEN[name])
    assert failing_checks([check], broken_sgd(**{name: True})) == [BROKEN[name]]


@pytest.mark.suite_check
def test_no_builtin_sgd_in_reference():
    from torchkata.optim import sgd as module

    source = inspect.getsource(module)
    for builtin in ("optim.SGD(", "optim.sgd", "_single_tensor_sgd", "_multi_tensor_sgd", "F.sgd", "_foreach_", "_fused_sgd"):
        assert builtin not in source, builtin
