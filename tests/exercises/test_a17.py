"""a17: gradient clipping by hand (norm clipping), the functions b02-05 builds, graded by b02-05's checks: equal to
torch.nn.utils.clip_grad_norm_ for every norm type (0.5, 1, 2, 3.5, inf) with the returned total norm,
error_if_nonfinite, clip_grad_value_, parameters without gradients skipped, no torch built-in or foreach kernel used;
and here also inside training steps, where clipping by hand must give the same parameters as torch's clipping."""
import pytest
import torch
import torch.nn.functional as F

from test_b02_05 import CHECKS as CLIPPING_CHECKS

EXERCISE = "a17"


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def check_training_steps_match_torch(impl):
    # ten gradient steps of a small MLP at a learning rate where the first gradients are huge, clipped in between
    x, y = torch.randn(32, 4, dtype=torch.float64), torch.randn(32, 1, dtype=torch.float64) * 100
    models = []
    for clip in (lambda ps: impl.clip_grad_norm_(ps, 1.0), lambda ps: torch.nn.utils.clip_grad_norm_(ps, 1.0)):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
        norms = []
        for _ in range(10):  # plain gradient descent (torch.optim's first use imports its compiler: seconds)
            model.zero_grad()
            F.mse_loss(model(x), y).backward()
            norms.append(clip(model.parameters()))
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.1 * p.grad
        models.append((model, torch.stack(norms)))
    (ours, our_norms), (theirs, their_norms) = models
    torch.testing.assert_close(our_norms, their_norms, rtol=1e-10, atol=0)
    assert our_norms[0] > 100, "the test clips for real"
    for p, q in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


CHECKS = [*CLIPPING_CHECKS, check_training_steps_match_torch]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_clipping(impl, check):
    check(impl)
