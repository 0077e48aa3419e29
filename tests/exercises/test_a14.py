"""a14: Adam (AdamW's decoupled decay, AMSGrad) and RMSprop (centered, momentum) written by hand, graded step for
step against torch.optim.Adam, AdamW and RMSprop with the gradient fields and parameters of b02-04's grader."""
import copy
import inspect

import pytest
import torch

from grading import failing_checks
from test_b02_04 import assert_leaves_grad_and_gradless_params_alone, assert_params_close, gradient_of, make_params, train

EXERCISE = "a14"
STEPS = 100
# every option, alone and together: the all-options sets run the 100 steps, the others 15
ADAM = [dict(lr=0.03, betas=(0.8, 0.95), eps=1e-3, weight_decay=0.05, amsgrad=True, maximize=True), dict(lr=0.01),
        dict(lr=0.02, betas=(0.5, 0.9)), dict(lr=0.01, eps=0.1), dict(lr=0.01, weight_decay=0.3),
        dict(lr=0.01, amsgrad=True), dict(lr=0.01, maximize=True, weight_decay=0.1)]
ADAMW = [dict(lr=0.01, weight_decay=0.2, amsgrad=True, maximize=True), dict(lr=0.01), dict(lr=0.02, weight_decay=0.5)]
RMSPROP = [dict(lr=0.003, alpha=0.95, eps=0.1, momentum=0.8, centered=True, weight_decay=0.1, maximize=True),
           dict(lr=0.01), dict(lr=0.01, alpha=0.9, eps=0.1), dict(lr=0.01, weight_decay=0.2),
           dict(lr=0.005, momentum=0.9), dict(lr=0.01, centered=True), dict(lr=0.005, momentum=0.5, centered=True),
           dict(lr=0.005, alpha=0.3, centered=True)]  # alpha <= 0.5: 1 - alpha is not 1 % alpha
TORCH = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW, "RMSprop": torch.optim.RMSprop}
CASES = {"Adam": ADAM, "AdamW": ADAMW, "RMSprop": RMSPROP}


@pytest.fixture(scope="module")
def optim(impl_for):
    return impl_for(EXERCISE)


def torch_loop(name):
    return lambda ps, *args, **options: TORCH[name](ps, *args, **options, foreach=False)


def run_pair(optim, name, options, dtype=torch.float64, steps=STEPS, groups=lambda ps: ps):
    """Parameters (and optimizers) after `steps` steps of ours and of torch's from the same start."""
    ours, theirs = make_params(dtype), make_params(dtype)
    opt_ours = train(lambda ps: getattr(optim, name)(groups(ps), **options), ours, steps)
    opt_theirs = train(lambda ps: torch_loop(name)(groups(ps), **options), theirs, steps)
    return ours, theirs, opt_ours, opt_theirs


def matches_torch(optim, names):
    for name in names:
        for i, options in enumerate(CASES[name]):
            ours, theirs, _, _ = run_pair(optim, name, options, steps=STEPS if i == 0 else 15)
            assert_params_close(ours, theirs)
            assert not torch.equal(ours[0].detach(), make_params()[0].detach()), (name, options, "never moved")


def check_adam_matches_torch_float64(optim):
    matches_torch(optim, ["Adam", "AdamW"])


def check_rmsprop_matches_torch_float64(optim):
    matches_torch(optim, ["RMSprop"])


def check_matches_torch_float32(optim):
    for name, cases in CASES.items():
        ours, theirs, _, _ = run_pair(optim, name, cases[0], dtype=torch.float32, steps=30)
        assert all(o.dtype == torch.float32 for o in ours)
        assert_params_close(ours, theirs, rtol=1e-5, atol=1e-6)


def check_adam_decoupled_flag_is_adamw(optim):
    # Adam(decoupled_weight_decay=True) is AdamW; with L2 the decay passes through the moments and is normalised
    # away, so the two differ
    options = dict(lr=0.01, weight_decay=0.5, amsgrad=True)
    flagged, adamw, l2 = make_params(), make_params(), make_params()
    train(lambda ps: optim.Adam(ps, **options, decoupled_weight_decay=True), flagged, 40)
    train(lambda ps: torch_loop("AdamW")(ps, **options), adamw, 40)
    train(lambda ps: optim.Adam(ps, **options), l2, 40)
    assert_params_close(flagged, adamw)
    assert float((l2[0] - adamw[0]).detach().abs().max()) > 1e-3


def check_first_step_is_lr_times_sign(optim):
    # bias correction: m / (1 - beta1) = g and v / (1 - beta2) = g², so the first step is lr * sign(g) whatever the
    # betas and the size of g (eps 0)
    for betas in ((0.9, 0.999), (0.5, 0.6)):
        p = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
        opt = optim.Adam([p], lr=0.1, betas=betas, eps=0.0)
        p.grad = torch.tensor([1e-3, -5.0, 1e4], dtype=torch.float64)
        opt.step()
        torch.testing.assert_close(p.detach(), torch.tensor([0.9, -1.9, 2.9], dtype=torch.float64), rtol=1e-14, atol=0)


def check_amsgrad_never_lowers_the_denominator(optim):
    # a large gradient and then small ones: AMSGrad keeps the largest second moment, so its steps stay small
    steps = [10.0] + [0.1] * 20
    moved = {}
    for amsgrad in (False, True):
        p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = optim.Adam([p], lr=0.1, betas=(0.5, 0.5), amsgrad=amsgrad)
        for g in steps:
            p.grad = torch.tensor([g], dtype=torch.float64)
            opt.step()
        moved[amsgrad] = -float(p.detach())
        assert ("max_exp_avg_sq" in opt.state[p]) == amsgrad
    assert moved[True] < 0.5 * moved[False], moved


def check_state_like_torch(optim):
    # the same state keys and values as torch's, nothing more: state_dicts are exchangeable
    for name, options in [("Adam", dict(lr=0.01, amsgrad=True)), ("Adam", dict(lr=0.01)),
                          ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)), ("RMSprop", dict(lr=0.01))]:
        ours, theirs, opt_ours, opt_theirs = run_pair(optim, name, options, steps=5)
        for o, t in zip(ours, theirs):
            assert sorted(opt_ours.state[o]) == sorted(opt_theirs.state[t]), (name, options)
            for key, value in opt_theirs.state[t].items():
                torch.testing.assert_close(torch.as_tensor(opt_ours.state[o][key], dtype=value.dtype), value,
                                           msg=f"{name} state {key!r}")


def check_step_counts_per_parameter(optim):
    # a parameter that gets its first gradient late starts its own bias correction at step 1
    for name, options in (("Adam", dict(lr=0.05)), ("RMSprop", dict(lr=0.01, centered=True))):
        results = []
        for make in (getattr(optim, name), torch_loop(name)):
            params = make_params()
            opt = make(params, **options)
            for step in range(12):
                opt.zero_grad()
                for i, p in enumerate(params):
                    if i != 1 or step >= 7:
                        p.grad = gradient_of(p.detach(), step)
                opt.step()
            results.append(params)
        assert_params_close(*results)


def check_parameter_groups(optim):
    # each group keeps its own learning rate and options; the defaults fill what a group leaves out
    def groups(ps):
        return [{"params": ps[:1], "lr": 0.002}, {"params": ps[1:], "amsgrad": True, "betas": (0.8, 0.9)}]

    def rms_groups(ps):
        return [{"params": ps[:1], "lr": 0.001, "centered": True}, {"params": ps[1:], "momentum": 0.9}]
    for name, options, grouping in (("Adam", dict(lr=0.03, weight_decay=0.1), groups),
                                    ("AdamW", dict(lr=0.03), groups), ("RMSprop", dict(lr=0.01), rms_groups)):
        ours, theirs, opt_ours, _ = run_pair(optim, name, options, steps=30, groups=grouping)
        assert_params_close(ours, theirs)
        assert opt_ours.param_groups[1]["lr"] == options["lr"]


def check_lr_change_is_used(optim):
    # a scheduler changes param_groups[i]["lr"] between steps: the next step must use the new value
    for name, options in (("Adam", dict(lr=0.1)), ("RMSprop", dict(lr=0.01, momentum=0.9))):
        results = []
        for make in (getattr(optim, name), torch_loop(name)):
            params = make_params()
            opt = make(params, **options)
            schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.3)
            for step in range(10):
                for p in params:
                    p.grad = gradient_of(p.detach(), step)
                opt.step()
                schedule.step()
            results.append(params)
        assert_params_close(*results)


def check_state_dict_round_trip(optim):
    for name, options in (("Adam", dict(lr=0.02, weight_decay=0.1, amsgrad=True)), ("AdamW", dict(lr=0.02)),
                          ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.05))):
        make = getattr(optim, name)
        straight, resumed = make_params(), make_params()
        train(lambda ps: make(ps, **options), straight, 20)
        saved = copy.deepcopy(train(lambda ps: make(ps, **options), resumed, 10).state_dict())
        fresh = make(resumed, lr=1.0)  # hyper-parameters too come back from the state_dict
        fresh.load_state_dict(saved)
        assert fresh.param_groups[0]["lr"] == options["lr"]
        train(lambda ps: fresh, resumed, 10, first=10)
        assert_params_close(resumed, straight, rtol=0, atol=0)


def check_exchanges_state_dicts_with_torch(optim):
    # torch's state_dict resumes in ours, and ours in torch's
    for name, options in (("Adam", dict(lr=0.02, amsgrad=True, weight_decay=0.1)),
                          ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True))):
        want = make_params()
        train(lambda ps: torch_loop(name)(ps, **options), want, 16)
        for first, second in ((torch_loop(name), getattr(optim, name)), (getattr(optim, name), torch_loop(name))):
            got = make_params()
            saved = copy.deepcopy(train(lambda ps: first(ps, **options), got, 8).state_dict())
            resumed = second(got, **options)
            resumed.load_state_dict(saved)
            train(lambda ps: resumed, got, 8, first=8)
            assert_params_close(got, want)


def check_defaults_match_torch(optim):
    for name, keys in (("Adam", ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay")),
                       ("AdamW", ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay")),
                       ("RMSprop", ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"))):
        ours, theirs = getattr(optim, name)(make_params()), TORCH[name](make_params())
        assert isinstance(ours, torch.optim.Optimizer)
        for key in keys:
            assert ours.defaults[key] == theirs.defaults[key], (name, key)
        ours, theirs = make_params(), make_params()
        train(getattr(optim, name), ours, 5)  # the default lr and the rest
        train(torch_loop(name), theirs, 5)
        assert_params_close(ours, theirs)
    positional = {"Adam": (0.01, (0.8, 0.9), 1e-3, 0.1, True), "AdamW": (0.01, (0.8, 0.9), 1e-3, 0.1, True),
                  "RMSprop": (0.01, 0.9, 1e-3, 0.1, 0.5, True)}
    for name, args in positional.items():  # torch's positional order
        ours, theirs = make_params(), make_params()
        train(lambda ps: getattr(optim, name)(ps, *args), ours, 10)
        train(lambda ps: torch_loop(name)(ps, *args), theirs, 10)
        assert_params_close(ours, theirs)


def check_leaves_grad_and_gradless_params_alone(optim):
    for name, options in (("Adam", dict(lr=0.1, weight_decay=0.5)), ("AdamW", dict(lr=0.1, maximize=True)),
                          ("RMSprop", dict(lr=0.1, weight_decay=0.5, maximize=True))):
        assert_leaves_grad_and_gradless_params_alone(lambda ps: getattr(optim, name)(ps, **options), f"{name} step")


def check_non_finite_parameters_like_torch(optim):
    # no decay term when weight_decay is 0 (0 * inf = nan); what torch makes of inf and nan otherwise
    for name, options in (("Adam", dict(lr=0.1)), ("Adam", dict(lr=0.1, weight_decay=0.1)), ("AdamW", dict(lr=0.1)),
                          ("RMSprop", dict(lr=0.1, momentum=0.9)), ("RMSprop", dict(lr=0.1, weight_decay=0.1))):
        ours, theirs = (torch.tensor([float("inf"), -float("inf"), float("nan"), 1.0], requires_grad=True)
                        for _ in range(2))
        for p, opt in ((ours, getattr(optim, name)([ours], **options)), (theirs, TORCH[name]([theirs], **options))):
            for _ in range(2):
                p.grad = torch.ones(4)
                opt.step()
        torch.testing.assert_close(ours.detach(), theirs.detach(), equal_nan=True)


def check_edges_like_torch(optim):
    # lr 0 freezes, eps 0 and beta 0 are allowed, a momentum-free RMSprop keeps no buffer
    for name, options in (("Adam", dict(lr=0.0)), ("Adam", dict(lr=0.01, betas=(0.0, 0.0), eps=0.0)),
                          ("AdamW", dict(lr=0.01, weight_decay=0.0)), ("RMSprop", dict(lr=0.0, momentum=0.9)),
                          ("RMSprop", dict(lr=0.01, alpha=0.0, eps=0.5))):
        ours, theirs, opt_ours, _ = run_pair(optim, name, options, steps=5)
        assert_params_close(ours, theirs)
        if options["lr"] == 0.0:
            assert_params_close(ours, make_params(), rtol=0, atol=0)


def check_errors_name_the_problem(optim):
    p = make_params()
    for name, options, message in [
            ("Adam", dict(lr=-0.1), "learning rate: -0.1"), ("Adam", dict(eps=-1e-3), "epsilon value: -0.001"),
            ("Adam", dict(betas=(1.0, 0.9)), "beta parameter at index 0: 1.0"),
            ("Adam", dict(betas=(-0.1, 0.9)), "beta parameter at index 0: -0.1"),
            ("Adam", dict(betas=(0.9, 1.5)), "beta parameter at index 1: 1.5"),
            ("Adam", dict(weight_decay=-0.5), "weight_decay value: -0.5"), ("AdamW", dict(lr=-1.0), "learning rate"),
            ("RMSprop", dict(lr=-0.1), "learning rate: -0.1"), ("RMSprop", dict(eps=-1.0), "epsilon value: -1.0"),
            ("RMSprop", dict(momentum=-0.9), "momentum value: -0.9"),
            ("RMSprop", dict(weight_decay=-0.1), "weight_decay value: -0.1"),
            ("RMSprop", dict(alpha=-0.5), "alpha value: -0.5")]:
        with pytest.raises(ValueError, match=message):
            getattr(optim, name)(p, **options)


CHECKS = [check_adam_matches_torch_float64, check_rmsprop_matches_torch_float64, check_matches_torch_float32, check_adam_decoupled_flag_is_adamw,
          check_first_step_is_lr_times_sign, check_amsgrad_never_lowers_the_denominator, check_state_like_torch,
          check_step_counts_per_parameter, check_parameter_groups, check_lr_change_is_used,
          check_state_dict_round_trip, check_exchanges_state_dicts_with_torch, check_defaults_match_torch,
          check_leaves_grad_and_gradless_params_alone, check_non_finite_parameters_like_torch,
          check_edges_like_torch, check_errors_name_the_problem]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_adaptive(optim, check):
    check(optim)


def broken(**bugs):
    """Adam and RMSprop written out plainly, with one deliberate mistake switched on by name."""
    from torchkata.optim import adaptive
    shared = {}

    class Adam(adaptive.Adam):
        def _update(self, p, grad, group, state):
            lr, (beta1, beta2), decay, eps = group["lr"], group["betas"], group["weight_decay"], group["eps"]
            if not state:
                state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p), v_max=torch.zeros_like(p))
            counter = shared if bugs.get("global_step") else state
            counter["step"] = t = counter.get("step", 0) + 1
            if decay and (group["decoupled_weight_decay"] or bugs.get("l2_as_decoupled")):
                p.mul_(1 - lr * decay)
            elif decay:
                grad = grad + decay * p
            state["m"] = beta1 * state["m"] + (1 - beta1) * grad
            v = state["v"] = beta2 * state["v"] + (1 - beta2) * grad * grad
            if group["amsgrad"] and not bugs.get("amsgrad_ignored"):
                v = state["v_max"] = torch.maximum(state["v_max"], v)
            c1, c2 = (1.0, 1.0) if bugs.get("no_bias_correction") else (1 - beta1**t, 1 - beta2**t)
            denom = (v / c2 + eps).sqrt() if bugs.get("eps_inside_sqrt") else (v / c2).sqrt() + eps
            p.sub_(lr / c1 * state["m"] / denom)

    class RMSprop(adaptive.RMSprop):
        def _update(self, p, grad, group, state):
            lr = self.defaults["lr"] if bugs.get("global_lr") else group["lr"]
            alpha, momentum, decay = group["alpha"], group["momentum"], group["weight_decay"]
            if not state:
                state.update(s=torch.zeros_like(p), a=torch.zeros_like(p), b=torch.zeros_like(p))
            if decay:
                grad = grad + decay * p
            variance = state["s"] = alpha * state["s"] + (1 - alpha) * grad * grad
            if group["centered"] and not bugs.get("centered_ignored"):
                state["a"] = alpha * state["a"] + (1 - alpha) * grad
                variance = variance - state["a"] ** 2
            denom = variance.sqrt() + group["eps"]
            if momentum and bugs.get("momentum_before_scaling"):
                state["b"] = momentum * state["b"] + grad
                p.sub_(lr * state["b"] / denom)
            elif momentum:
                state["b"] = momentum * state["b"] + grad / denom
                p.sub_(lr * state["b"])
            else:
                p.sub_(lr * grad / denom)

    return type("Broken", (), {"Adam": Adam, "AdamW": adaptive.AdamW, "RMSprop": RMSprop})


BROKEN = {  # name: the check that must reject it
    "no_bias_correction": "check_first_step_is_lr_times_sign",
    "l2_as_decoupled": "check_adam_decoupled_flag_is_adamw",
    "amsgrad_ignored": "check_amsgrad_never_lowers_the_denominator",
    "eps_inside_sqrt": "check_adam_matches_torch_float64",
    "global_step": "check_step_counts_per_parameter",
    "centered_ignored": "check_rmsprop_matches_torch_float64",
    "momentum_before_scaling": "check_rmsprop_matches_torch_float64",
    "global_lr": "check_parameter_groups",
}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", BROKEN)
def test_broken_optimizer_is_rejected(name):
    check = next(c for c in CHECKS if c.__name__ == BROKEN[name])
    assert BROKEN[name] in failing_checks([check], broken(**{name: True}))


@pytest.mark.suite_check
def test_no_builtin_optimizer_in_reference():
    from torchkata.optim import adaptive as module

    source = inspect.getsource(module)
    for builtin in ("optim.Adam(", "optim.AdamW(", "optim.RMSprop(", "optim.adam", "optim.rmsprop", "_single_tensor",
                    "_multi_tensor", "_fused_adam", "_foreach_"):
        assert builtin not in source, builtin
