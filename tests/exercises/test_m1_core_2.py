"""m1-core-2: gradient hooks that log and modify gradients during backprop. The module is a06's (every check of
test_a06 grades it), and here the hooks change whole trainings through the shared loop exactly as the same change
made by hand on .grad before each optimizer step: bitwise the same weights. Removed hooks give plain training."""
import pytest
import torch
from torch import nn

from test_a06 import CHECKS as HOOK_CHECKS, broken_variants
from grading import failing_checks
from torchkata.training.loop import fit

EXERCISE = "m1-core-2"
pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing")
EPOCHS, BATCH = 2, 8


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # tiny matrices: on a loaded 2-core machine a second thread's waits make each step many times slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def hooks(impl_for):
    return impl_for(EXERCISE)


def data():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 6, generator=g)
    return (x[:32], (x[:32, 0] > 0).long()), (x[32:], (x[32:, 0] > 0).long())


def trained(register=None, by_hand=None, hand_steps=10**9, epochs=EPOCHS, remove_after=None, hooks=None):
    """A small MLP from a fixed init with momentum and weight decay, trained with `register(model)`'s hooks
    (removed after `remove_after` epochs) or with `by_hand(model)` on the gradients of the first `hand_steps` steps."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2))
    handles = register(model) if register else []
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    train, test = data()
    generator = torch.Generator().manual_seed(5)

    def before_step(model, step):
        if by_hand and step < hand_steps:
            by_hand(model)

    if remove_after is not None:
        fit(model, optimizer, train, test, remove_after, BATCH, generator)
        hooks.remove(handles)
        epochs -= remove_after
    fit(model, optimizer, train, test, epochs, BATCH, generator, before_step=before_step)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def grads(params):
    return [p.grad for p in params]


def check_scaled_training(hooks):
    got = trained(lambda m: hooks.scale_gradients(m, 0.37))
    want = trained(by_hand=lambda m: [g.mul_(0.37) for g in grads(m.parameters())])
    assert torch.equal(got, want)
    assert not torch.equal(got, trained())


def check_clipped_training(hooks):
    got = trained(lambda m: hooks.clip_gradients(m[2], 0.02))
    want = trained(by_hand=lambda m: [g.clamp_(-0.02, 0.02) for g in grads(m[2].parameters())])
    assert torch.equal(got, want)
    assert not torch.equal(got, trained())


def check_frozen_layer_training(hooks):
    got = trained(lambda m: hooks.zero_gradients(m[0]))
    want = trained(by_hand=lambda m: [g.zero_() for g in grads(m[0].parameters())])
    assert torch.equal(got, want)
    assert not torch.equal(got, trained())


def check_hooks_combine_in_order(hooks):
    # scale then clip: the clip sees the scaled gradient
    got = trained(lambda m: hooks.scale_gradients(m, 4.0) + hooks.clip_gradients(m, 0.05))
    want = trained(by_hand=lambda m: [g.mul_(4.0).clamp_(-0.05, 0.05) for g in grads(m.parameters())])
    assert torch.equal(got, want)


def check_removed_hooks_restore_plain_training(hooks):
    def every_hook(m):
        return hooks.scale_gradients(m, 3.0) + hooks.clip_gradients(m, 1e-3) + hooks.zero_gradients(m[0])

    assert torch.equal(trained(every_hook, remove_after=0, hooks=hooks), trained())
    # clipped in the first epoch (4 steps of 8 out of 32), plain after it
    got = trained(lambda m: hooks.clip_gradients(m, 1e-3), remove_after=1, hooks=hooks)
    want = trained(by_hand=lambda m: [g.clamp_(-1e-3, 1e-3) for g in grads(m.parameters())], hand_steps=4)
    assert torch.equal(got, want)


def check_log_during_training(hooks):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2))
    hooks.clip_gradients(model, 0.01)
    log = hooks.MaxGradientLog(model)
    train, test = data()
    seen = []

    def before_step(model, step):
        seen.append(max(p.grad.abs().max().item() for p in model[0].parameters()))
        log.end_step(step)

    fit(model, torch.optim.SGD(model.parameters(), lr=0.1), train, test, EPOCHS, BATCH,
        torch.Generator().manual_seed(5), before_step=before_step, accumulate=2)
    assert [row["step"] for row in log.rows] == [s for s in range(4) for _ in range(2)]
    # a hook clips each backward pass: two micro-batches of a step add up to twice the limit in .grad
    assert max(r["weight"] for r in log.rows if r["layer"] == "0") == pytest.approx(0.01, rel=1e-6)  # float32
    assert 0.01 < max(seen) <= 0.02 + 1e-9


CHECKS = [*HOOK_CHECKS, check_scaled_training, check_clipped_training, check_frozen_layer_training,
          check_hooks_combine_in_order, check_removed_hooks_restore_plain_training, check_log_during_training]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_gradient_hooks(hooks, check):
    check(hooks)


def training_variants():
    from test_a06 import variant
    from torchkata.autograd import hooks as ref

    def scale_once(module, factor):  # scales only the first parameter it finds
        handles = ref.scale_gradients(module, factor)
        ref.remove(handles[1:])
        return handles[:1]

    def clip_into_grad(module, limit):  # clips .grad after the fact, from a hook on the next backward: a step late
        def hook(grad, params=list(module.parameters())):
            for p in params:
                if p.grad is not None:
                    p.grad.clamp_(-limit, limit)
        return [p.register_hook(hook) for p in module.parameters()]

    return {"scale_once": (variant(scale_gradients=scale_once), "check_scaled_training"),
            "clip_a_step_late": (variant(clip_gradients=clip_into_grad), "check_clipped_training")}


@pytest.mark.suite_check
@pytest.mark.parametrize("name", ["last_backward_only", "clip_by_norm", "remove_keeping_list", "scale_once",
                                  "clip_a_step_late"])
def test_broken_hooks_are_rejected(name):
    broken, rejected_by = {**broken_variants(), **training_variants()}[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
