"""m2-deep-2: dynamic loss scaling, graded against torch.amp.GradScaler step for step, with injected overflows."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks
from torchkata.training.loop import train_epoch

EXERCISE = "m2-deep-2"
INF = float("inf")


@pytest.fixture(scope="module")
def scaling(impl_for):
    return impl_for(EXERCISE)


def model_and_data(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    return model, torch.randn(40, 6), torch.randint(0, 3, (40,))


def train(make_scaler, steps: int, overflow_at=(), optimizer_cls=torch.optim.SGD, **options):
    """`steps` steps of the canonical scaled loop (scale, backward, step, update), a gradient set to inf at the
    steps in `overflow_at`; returns (scaler, scale after each update, parameters after each step)."""
    model, x, y = model_and_data()
    optimizer = optimizer_cls(model.parameters(), lr=0.1, **options)
    scaler, scales, params = make_scaler(), [], []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        batch = slice(step % 5 * 8, step % 5 * 8 + 8)
        scaler.scale(F.cross_entropy(model(x[batch]), y[batch])).backward()
        if step in overflow_at:
            model[0].weight.grad[0, 0] = INF if step % 2 else float("nan")
        scaler.step(optimizer)
        scaler.update()
        scales.append(float(scaler.get_scale() if hasattr(scaler, "get_scale") else scaler.scale_value))
        params.append(torch.cat([p.detach().flatten().clone() for p in model.parameters()]))
    return scaler, scales, params


def check_matches_grad_scaler(scaling):
    for options, overflow_at, optimizer_cls, extra in [
            (dict(init_scale=2.0 ** 10, growth_interval=3), {4, 5, 11}, torch.optim.SGD, dict(momentum=0.9)),
            (dict(init_scale=300.0, growth_factor=1.5, backoff_factor=0.25, growth_interval=2), {1, 6}, torch.optim.Adam, {})]:
        _, want_scales, want_params = train(lambda: torch.amp.GradScaler("cpu", **options), 12, overflow_at,
                                            optimizer_cls, **extra)
        _, scales, params = train(lambda: scaling.DynamicLossScaler(**options), 12, overflow_at, optimizer_cls, **extra)
        assert scales == want_scales, (options, scales, want_scales)
        for got, want in zip(params, want_params):
            assert torch.equal(got, want), options


def check_overflow_skips_then_grows(scaling):
    scaler, scales, params = train(lambda: scaling.DynamicLossScaler(init_scale=64.0, growth_interval=4), 12, {3})
    assert scales[:3] == [64.0, 64.0, 64.0] and scales[3] == 32.0  # backed off by the overflow
    assert torch.equal(params[3], params[2])  # the overflowed step was skipped
    model, x, y = model_and_data()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler.scale(F.cross_entropy(model(x), y)).backward()
    model[2].bias.grad[0] = float("nan")
    assert scaler.step(optimizer) is False  # step says it skipped
    assert all(torch.isfinite(p).all() for p in params)  # no inf or nan reached the weights
    assert scales[4:7] == [32.0] * 3 and scales[7] == 64.0  # 4 clean steps: grown again
    assert scales[8:11] == [64.0] * 3 and scales[11] == 128.0
    assert not torch.equal(params[4], params[3]) and scaler.skipped == 1
    assert scaler.history == scales


def check_defaults(scaling):
    scaler = scaling.DynamicLossScaler()
    assert scaler.scale_value == 2.0 ** 16
    assert (scaler.growth_factor, scaler.backoff_factor, scaler.growth_interval) == (2.0, 0.5, 2000)
    _, scales, _ = train(scaling.DynamicLossScaler, 3, {1})
    assert scales == [2.0 ** 16, 2.0 ** 15, 2.0 ** 15]


def check_growth_stops_below_float32_overflow(scaling):
    _, scales, _ = train(lambda: scaling.DynamicLossScaler(init_scale=2.0 ** 126, growth_interval=1), 3)
    assert scales == [2.0 ** 127] * 3  # 2**128 is inf in float32: the scale stays
    _, want, _ = train(lambda: torch.amp.GradScaler("cpu", init_scale=2.0 ** 126, growth_interval=1), 3)
    assert scales == want


def check_scale_and_unscale(scaling):
    scaler = scaling.DynamicLossScaler(init_scale=8.0)
    loss = torch.tensor(1.5, requires_grad=True)
    scaled = scaler.scale(loss)
    assert float(scaled.detach()) == 12.0
    scaled.backward()
    assert float(loss.grad) == 8.0
    model, x, y = model_and_data()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler.scale(F.cross_entropy(model(x), y)).backward()
    scaled_grads = [p.grad.clone() for p in model.parameters()]
    assert scaler.unscale_(optimizer) is False
    for p, g in zip(model.parameters(), scaled_grads):
        assert torch.equal(p.grad, g * torch.tensor(1 / 8.0))
    with pytest.raises(RuntimeError, match="unscale_"):
        scaler.unscale_(optimizer)  # twice in one step would divide twice
    before = [p.detach().clone() for p in model.parameters()]
    assert scaler.step(optimizer) is True  # already unscaled: steps without dividing again
    for p, b, g in zip(model.parameters(), before, scaled_grads):
        assert torch.equal(p.detach(), b - 0.1 * (g * torch.tensor(1 / 8.0)))
    scaler.update()
    assert scaler.found_inf is None and scaler.history == [8.0]


def check_update_needs_unscale(scaling):
    with pytest.raises(RuntimeError, match="update"):
        scaling.DynamicLossScaler().update()


def check_disabled(scaling):
    scaler = scaling.DynamicLossScaler(init_scale=8.0, enabled=False)
    loss = torch.tensor(2.0)
    assert scaler.scale(loss) is loss
    model, x, y = model_and_data()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    F.cross_entropy(model(x), y).backward()
    model[0].weight.grad[0, 0] = INF
    assert scaler.unscale_(optimizer) is False and scaler.step(optimizer) is True
    assert not torch.isfinite(model[0].weight).all()  # disabled: no check, the step is taken as asked
    scaler.update()
    assert scaler.scale_value == 8.0 and scaler.history == []
    weight = torch.tensor(1.0, requires_grad=True)
    scaler.loss_fn(lambda out, target: out * target)(weight, torch.tensor(3.0)).backward()
    assert float(weight.grad) == 3.0  # the loop hook does not scale either


def check_bad_settings_named(scaling):
    for options, name in [(dict(init_scale=0.0), "init_scale"), (dict(init_scale=-4.0), "init_scale"),
                          (dict(init_scale=INF), "init_scale"), (dict(growth_factor=0.5), "growth_factor"),
                          (dict(growth_factor=1.0), "growth_factor"), (dict(backoff_factor=1.0), "backoff_factor"),
                          (dict(backoff_factor=0.0), "backoff_factor"),
                          (dict(backoff_factor=-0.5), "backoff_factor"), (dict(growth_interval=0), "growth_interval")]:
        with pytest.raises(ValueError, match=name):
            scaling.DynamicLossScaler(**options)
    scaling.DynamicLossScaler(init_scale=1e-3, growth_factor=1.001, backoff_factor=0.999, growth_interval=1)


def check_state_dict_round_trip(scaling):
    scaler, _, _ = train(lambda: scaling.DynamicLossScaler(init_scale=16.0, growth_factor=3.0, backoff_factor=0.25,
                                                           growth_interval=5), 6, {1})
    assert scaler.scale_value == 4.0 and scaler.clean_steps == 4
    again = scaling.DynamicLossScaler()
    again.load_state_dict(scaler.state_dict())
    assert again.state_dict() == scaler.state_dict()
    again.found_inf = False  # one more clean step: the fifth in a row grows the scale by the loaded factor
    again.update()
    assert again.scale_value == 12.0
    long = scaling.DynamicLossScaler(init_scale=4.0)  # the default interval: 2000 clean steps, the last one here
    long.load_state_dict(long.state_dict() | {"clean_steps": 1999})
    long.found_inf = False
    long.update()
    assert long.scale_value == 8.0 and long.clean_steps == 0


def loop_training(make_step, steps_overflow):
    """Two epochs through training.loop's train_epoch; the hooks come from make_step(model, optimizer)."""
    model, x, y = model_and_data()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    loss_fn, before_step = make_step(model, optimizer)

    def inject(model_, step):
        if step in steps_overflow:
            model_[0].weight.grad[1, 1] = INF
        before_step(model_, step)

    generator = torch.Generator().manual_seed(0)
    losses = [train_epoch(model, optimizer, x, y, 8, generator, loss_fn, inject, first_step=5 * e)["loss"]
              for e in range(2)]
    return losses, [p.detach() for p in model.parameters()]


def check_loop_hooks_match_grad_scaler(scaling):
    scaler = scaling.DynamicLossScaler(init_scale=2.0 ** 8, growth_interval=2)
    losses, params = loop_training(lambda m, o: (scaler.loss_fn(F.cross_entropy), scaler.before_step(o)), {2, 7})

    model, x, y = model_and_data()  # the same training written out with GradScaler
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    reference = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8, growth_interval=2)
    generator, want_losses, scales, step = torch.Generator().manual_seed(0), [], [], 0
    for _ in range(2):
        total = 0.0
        for idx in torch.randperm(40, generator=generator).split(8):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            reference.scale(loss).backward()
            if step in {2, 7}:
                model[0].weight.grad[1, 1] = INF
            reference.step(optimizer)
            reference.update()
            scales.append(reference.get_scale())
            total, step = total + loss.item() * len(idx), step + 1
        want_losses.append(total / 40)
    assert losses == want_losses  # the loop records the unscaled loss
    assert scaler.history == scales and scaler.skipped == 2
    for got, want in zip(params, model.parameters()):
        assert torch.equal(got, want.detach())


CHECKS = [check_matches_grad_scaler, check_overflow_skips_then_grows, check_defaults, check_growth_stops_below_float32_overflow,
          check_scale_and_unscale, check_update_needs_unscale, check_disabled, check_bad_settings_named,
          check_state_dict_round_trip, check_loop_hooks_match_grad_scaler]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_loss_scaling(scaling, check):
    check(scaling)


def broken_variants(scaling):
    base = scaling.DynamicLossScaler

    class never_skips(base):  # unscales but steps on inf: NaN reaches the weights
        def step(self, optimizer):
            if self.found_inf is None:
                self.unscale_(optimizer)
            optimizer.step()
            return True

    class never_grows(base):  # backs off but keeps no count of clean steps
        def update(self):
            found = self.found_inf
            super().update()
            if not found:
                self.scale_value = self.history[-1] = self.history[-2] if len(self.history) > 1 else self.history[-1]

    class keeps_count_after_overflow(base):  # an overflow does not reset the clean-step count
        def update(self):
            clean = self.clean_steps
            found = self.found_inf
            super().update()
            if found:
                self.clean_steps = clean

    class divides_twice(base):  # step unscales even after an explicit unscale_
        def step(self, optimizer):
            self.found_inf = None
            return super().step(optimizer)

    return [never_skips, never_grows, keeps_count_after_overflow, divides_twice]


class Module:
    def __init__(self, cls):
        self.DynamicLossScaler = cls


@pytest.mark.suite_check
def test_broken_scalers_are_rejected(scaling):
    for broken in broken_variants(scaling):
        assert failing_checks([check_scale_and_unscale, check_overflow_skips_then_grows], Module(broken)), broken.__name__
