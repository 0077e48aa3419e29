"""b03-06: early stopping by hand. Scripted validation curves: the epoch it stops at, the best epoch, min_delta,
mode min and max, NaN; a hypothesis property against an oracle written another way (the stop comes exactly when
`patience` epochs in a row have failed to improve on the best by more than min_delta); the best weights are
copies, restored exactly, buffers included."""
import types

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from grading import failing_checks

EXERCISE = "b03-06"
NAN = float("nan")


@pytest.fixture(scope="module")
def stopping(impl_for):
    return impl_for(EXERCISE)


def replay(stopping, values, **options):
    """(the epoch step() first returned True or None, the stopper), stepping until it says stop."""
    stopper = stopping.EarlyStopping(**options)
    for epoch, value in enumerate(values, 1):
        if stopper.step(value):
            return epoch, stopper
    return None, stopper


def expected_stop(values, patience, min_delta, mode="min"):
    """The oracle: epochs since the last improvement, not a counter."""
    sign = 1 if mode == "min" else -1
    best, last_improvement = float("inf"), 0
    for epoch, value in enumerate(values, 1):
        if sign * value < best - min_delta:  # NaN compares False: never an improvement
            best, last_improvement = sign * value, epoch
        if epoch - last_improvement >= patience:
            return epoch, last_improvement
    return None, last_improvement


def check_hand_made_curves(stopping):
    cases = [  # values, options, (stop epoch, best epoch, best)
        ([1.0, 0.5, 0.75, 0.875, 0.9375], dict(patience=3), (5, 2, 0.5)),
        ([1.0, 1.0, 1.0], dict(patience=2), (3, 1, 1.0)),  # equal is not better
        ([1.0, 1.25, 1.5, 0.5, 1.0, 1.0, 1.0, 1.0], dict(patience=3), (7, 4, 0.5)),  # the count restarts
        ([1.0, 0.75, 0.5, 0.25, 0.0], dict(patience=1), (None, 5, 0.0)),
        ([2.0, 3.0], dict(patience=1), (2, 1, 2.0)),
        ([1.0, 0.96875, 0.9375, 0.90625, 0.875], dict(patience=3, min_delta=0.125), (4, 1, 1.0)),
        ([1.0, 0.5, 0.625, 0.75], dict(patience=2, min_delta=0.5), (3, 1, 1.0)),  # a gain of exactly min_delta: none
        ([1.0, 0.375, 0.25, 0.125], dict(patience=2, min_delta=0.5), (4, 2, 0.375)),
        ([0.5, 0.625, 0.625, 0.5625], dict(patience=2, mode="max"), (4, 2, 0.625)),
        ([0.5, 0.5625, 0.59375, 0.75], dict(patience=2, mode="max", min_delta=0.125), (3, 1, 0.5)),
        ([NAN, 1.0, NAN, NAN], dict(patience=2), (4, 2, 1.0)),  # NaN never improves, not even first
    ]
    for values, options, (stop, best_epoch, best) in cases:
        got, stopper = replay(stopping, values, **options)
        assert (got, stopper.best_epoch, stopper.best) == (stop, best_epoch, best), (values, options)
        assert stopper.stopped == (stop is not None)
        assert stopper.epoch == (stop or len(values))


def check_defaults(stopping):
    stopper = stopping.EarlyStopping()
    assert (stopper.patience, stopper.min_delta, stopper.mode) == (5, 0.0, "min")
    assert stopper.best is None and stopper.best_epoch == 0 and not stopper.stopped
    assert [stopper.step(v) for v in [1.0, 2, 2, 2, 2, 2]] == [False] * 5 + [True]
    assert stopper.step(3.0) and stopper.stopped  # a caller that goes on is still told to stop
    assert stopper.bad_epochs == 6
    # a mode equal to "max" but not the same object as the literal (compare strings with ==, not `is`)
    stopper = stopping.EarlyStopping(patience=1, mode="".join(["m", "ax"]))
    assert [stopper.step(v) for v in [0.5, 0.75, 0.625]] == [False, False, True]
    stopper = stopping.EarlyStopping(patience=1, mode="".join(["m", "in"]))
    assert [stopper.step(v) for v in [0.5, 0.25, 0.375]] == [False, False, True]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(values=st.lists(st.integers(0, 8).map(lambda i: i / 4), max_size=25), patience=st.integers(1, 5),
       min_delta=st.sampled_from([0.0, 0.25, 0.5]), mode=st.sampled_from(["min", "max"]))
def property_stops_exactly_after_patience_bad_epochs(stopping, values, patience, min_delta, mode):
    got, stopper = replay(stopping, values, patience=patience, min_delta=min_delta, mode=mode)
    stop, best_epoch = expected_stop(values, patience, min_delta, mode)
    assert (got, stopper.best_epoch) == (stop, best_epoch)
    assert stopper.bad_epochs == (patience if stop else len(values) - best_epoch)


def check_stop_property(stopping):
    property_stops_exactly_after_patience_bad_epochs(stopping)


def model_with_buffers():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def check_restores_best_weights(stopping):
    model, stopper = model_with_buffers(), stopping.EarlyStopping(patience=2)
    x = torch.randn(8, 3)
    snapshots = []
    for value in [1.0, 0.5, 0.75, 0.875]:
        model.train()(x)  # moves batch norm's running statistics
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1)  # in place, as an optimizer does
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        stopper.step(value, model)
    assert stopper.stopped and stopper.best_epoch == 2
    for key, value in stopper.best_state.items():  # copies: they kept the epoch-2 values
        assert torch.equal(value, snapshots[1][key]), key
        assert value.data_ptr() != model.state_dict()[key].data_ptr()
    stopper.restore(model)
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[1][key]), key
    with torch.no_grad():  # restoring loads values: the model does not share the saved tensors after it
        next(model.parameters()).add_(1.0)
    assert torch.equal(stopper.best_state["0.weight"], snapshots[1]["0.weight"])


def check_state_only_saved_on_improvement(stopping):
    model, stopper = model_with_buffers(), stopping.EarlyStopping(patience=5, mode="max")
    stopper.step(0.5, model)
    saved = stopper.best_state
    with torch.no_grad():
        model[0].weight.mul_(2)
    stopper.step(0.25, model)  # worse: the saved weights stay those of epoch 1
    assert stopper.best_state is saved or torch.equal(stopper.best_state["0.weight"], saved["0.weight"])
    torch.testing.assert_close(stopper.best_state["0.weight"] * 2, model[0].weight.detach())


def check_restore_needs_a_model(stopping):
    stopper = stopping.EarlyStopping(patience=1)
    stopper.step(1.0)
    with pytest.raises(RuntimeError, match="restore"):
        stopper.restore(model_with_buffers())


def check_bad_arguments_named(stopping):
    for patience in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="patience"):
            stopping.EarlyStopping(patience=patience)
    for min_delta in (-0.1, NAN):
        with pytest.raises(ValueError, match="min_delta"):
            stopping.EarlyStopping(min_delta=min_delta)
    with pytest.raises(ValueError, match="mode.*'minimum'"):
        stopping.EarlyStopping(mode="minimum")


CHECKS = [check_hand_made_curves, check_defaults, check_stop_property, check_restores_best_weights,
          check_state_only_saved_on_improvement, check_restore_needs_a_model, check_bad_arguments_named]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_early_stopping(stopping, check):
    check(stopping)


def broken_variants():
    from torchkata.nn import early_stopping as ref

    def variant(**methods):
        return types.SimpleNamespace(**{**vars(ref), "EarlyStopping": type("Broken", (ref.EarlyStopping,), methods)})

    def step_counting_all_bad_epochs(self, value, model=None):
        improved = self.improves(value)
        ref.EarlyStopping.step(self, value, model)
        self.total_bad = getattr(self, "total_bad", 0) + (not improved)
        self.bad_epochs = self.total_bad
        self.stopped = self.bad_epochs >= self.patience
        return self.stopped

    def step_saving_references(self, value, model=None):
        stop = ref.EarlyStopping.step(self, value, None)
        if model is not None and self.best_epoch == self.epoch:
            self.best_state = model.state_dict()
        return stop

    def step_one_late(self, value, model=None):
        ref.EarlyStopping.step(self, value, model)
        self.stopped = self.bad_epochs > self.patience
        return self.stopped

    return {  # name: (variant, the check that must reject it)
        "ties_improve": (variant(improves=lambda self, v: self.best is None or v <= self.best - self.min_delta
                                 if self.mode == "min" else v >= self.best + self.min_delta), "check_hand_made_curves"),
        "min_delta_ignored": (variant(improves=lambda self, v: self.best is None or (v < self.best if self.mode == "min"
                                                                                      else v > self.best)),
                              "check_hand_made_curves"),
        "bad_epochs_not_consecutive": (variant(step=step_counting_all_bad_epochs), "check_hand_made_curves"),
        "state_by_reference": (variant(step=step_saving_references), "check_restores_best_weights"),
        "stops_one_epoch_late": (variant(step=step_one_late), "check_defaults"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_early_stopping_is_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
