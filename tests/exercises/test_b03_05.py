"""b03-05: the update-to-weight ratio ‖ΔW‖ / ‖W‖ per layer: checked against ratios worked out by hand (a 3-4-5
triangle), against float64 arithmetic on random weights, and the recorder against the weights of each SGD and Adam
step of a small MLP, taken by hand around optimizer.step()."""
import types

import pytest
import torch
from torch import nn

from grading import failing_checks

EXERCISE = "b03-05"


@pytest.fixture(scope="module")
def upd(impl_for):
    return impl_for(EXERCISE)


def small_mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.LayerNorm(5), nn.Linear(5, 3))


def check_weights_of_any_rank(upd):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
    assert list(upd.weights(model)) == ["0.weight", "2.weight"]  # a 4-d kernel is a weight too


def check_ratio_by_hand(upd):
    before = {"w": torch.tensor([[3.0, 4.0]]), "v": torch.tensor([[1.0], [0.0]])}
    after = {"w": torch.tensor([[3.0, 3.5]]), "v": torch.tensor([[1.0], [2.0]])}
    ratios = upd.update_ratios(before, after)
    assert ratios == pytest.approx({"w": 0.5 / 5.0, "v": 2.0 / 1.0}, rel=1e-6)
    assert all(isinstance(r, float) for r in ratios.values())
    # an SGD step by hand: W' = W - lr * grad, so the ratio is lr * ‖grad‖ / ‖W‖ = 0.1 * 13 / 5
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 4.0]]))
    layer.weight.grad = torch.tensor([[5.0, 12.0]])
    snapshot = upd.weights(layer)
    torch.optim.SGD(layer.parameters(), lr=0.1).step()
    assert upd.update_ratios(snapshot, upd.weights(layer)) == pytest.approx({"weight": 0.26}, rel=1e-6)


def check_ratio_against_float64(upd):
    g = torch.Generator().manual_seed(1)
    before = {"a": torch.randn(7, 3, generator=g), "b": torch.randn(2, 3, 4, generator=g)}
    after = {k: v + 1e-3 * torch.randn(v.shape, generator=g) for k, v in before.items()}
    expected = {k: float(((after[k].double() - v.double()) ** 2).sum().sqrt() / (v.double() ** 2).sum().sqrt())
                for k, v in before.items()}
    assert upd.update_ratios(before, after) == pytest.approx(expected, rel=1e-5)
    assert upd.update_ratios(before, before) == {"a": 0.0, "b": 0.0}
    with pytest.raises(ValueError, match="different"):
        upd.update_ratios(before, {"a": after["a"]})
    with pytest.raises(ValueError, match="different"):  # a weight more after than before
        upd.update_ratios({"a": before["a"]}, after)


def check_weights_are_matrices_and_copies(upd):
    model = small_mlp()
    got = upd.weights(model)
    assert list(got) == ["0.weight", "3.weight"]  # biases and the LayerNorm's vectors left out
    assert torch.equal(got["0.weight"], model[0].weight) and not got["0.weight"].requires_grad
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert not torch.equal(got["0.weight"], model[0].weight)  # a copy, not a view of the live weight


def check_recorder_follows_each_step(upd):
    for make in (lambda ps: torch.optim.SGD(ps, lr=0.5, momentum=0.9), lambda ps: torch.optim.Adam(ps, lr=0.01)):
        model = small_mlp()
        optimizer = make(model.parameters())
        recorder = upd.UpdateRecorder(model, optimizer)
        expected = {"0.weight": [], "3.weight": []}
        x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
        for _ in range(4):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            before = {k: model.get_parameter(k).detach().clone() for k in expected}
            optimizer.step()
            for k in expected:
                w = model.get_parameter(k).detach()
                expected[k].append(float((w - before[k]).norm() / before[k].norm()))
        assert recorder.ratios.keys() == expected.keys()
        for k in expected:
            assert recorder.ratios[k] == pytest.approx(expected[k], rel=1e-5), k
        recorder.remove()
        optimizer.step()  # no longer recorded
        assert all(len(r) == 4 for r in recorder.ratios.values())


CHECKS = [check_ratio_by_hand, check_ratio_against_float64, check_weights_are_matrices_and_copies,
          check_weights_of_any_rank, check_recorder_follows_each_step]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_update_ratio(upd, check):
    check(upd)


def broken_variants():
    from torchkata.nn import update_ratio as ref

    def variant(**overrides):
        return types.SimpleNamespace(**{**vars(ref), **overrides})

    def over_after(before, after):
        return {k: float((after[k] - before[k]).norm() / after[k].norm()) for k in before}

    def squared(before, after):
        return {k: float(((after[k] - before[k]) ** 2).sum() / (before[k] ** 2).sum()) for k in before}

    def mean_abs(before, after):
        return {k: float((after[k] - before[k]).abs().mean() / before[k].abs().mean()) for k in before}

    class LaggingRecorder(ref.UpdateRecorder):  # the ratio between consecutive pre-step snapshots: one step late
        def pre_step(self, optimizer, args, kwargs):
            current = ref.weights(self.model)
            if self.before is not None:
                for name, ratio in ref.update_ratios(self.before, current).items():
                    self.ratios[name].append(ratio)
            self.before = current

        def post_step(self, optimizer, args, kwargs):
            pass

    def views(model):
        return {name: p.detach() for name, p in model.named_parameters() if p.dim() >= 2}

    return {  # name: (variant, the check that must reject it)
        "divides_by_the_new_weight": (variant(update_ratios=over_after), "check_ratio_by_hand"),
        "squared_norms": (variant(update_ratios=squared), "check_ratio_against_float64"),
        "mean_absolute": (variant(update_ratios=mean_abs), "check_ratio_by_hand"),
        "one_step_late": (variant(UpdateRecorder=LaggingRecorder), "check_recorder_follows_each_step"),
        "views_not_copies": (variant(weights=views), "check_weights_are_matrices_and_copies"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_update_ratio_is_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
