"""b03-07: an MLP for tabular data whose first layer standardises with the training rows' statistics: the fitted
mean and std are the training split's (against torch and against torchkata.data.tables.standardize), no forward
pass changes them (test rows never leak in), they travel in the state_dict but are not trained; the layers, the
parameter count, dropout, the errors, and a training that only standardised features make easy."""
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks
from torchkata.data import tables
from torchkata.training.loop import evaluate, fit

EXERCISE = "b03-07"


@pytest.fixture(scope="module")
def tab(impl_for):
    return impl_for(EXERCISE)


def table(rows=40, columns=5, seed=0):
    """Columns on very different scales and offsets, as a real table's are."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-2, 3, columns)
    return torch.randn(rows, columns, generator=g) * scales + torch.arange(columns) * 100


def check_statistics_are_the_training_rows(tab):
    train, test = table(), table(seed=1) * 3 + 50  # a test split with other statistics entirely
    for x in (train, train.double()):
        layer = tab.Standardize(x)
        torch.testing.assert_close(layer.mean, x.mean(dim=0), rtol=1e-6, atol=0)
        torch.testing.assert_close(layer.std, x.std(dim=0), rtol=1e-6, atol=0)  # the sample std, n - 1
    layer = tab.Standardize(train)
    expected_train, expected_test = tables.standardize(train, test)
    torch.testing.assert_close(layer(train), expected_train)
    torch.testing.assert_close(layer(test), expected_test)
    out = layer(train)
    torch.testing.assert_close(out.mean(0), torch.zeros(5), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std(0), torch.ones(5))


def check_forward_never_refits(tab):
    train, test = table(), table(seed=1) * 3 + 50
    model = tab.TabularMLP(train, classes=3, hidden=(8,))
    mean, std = model.standardize.mean.clone(), model.standardize.std.clone()
    for mode in (True, False):  # in training mode too: a layer that tracks batches (BatchNorm) would move
        model.train(mode)
        model(test)
        torch.testing.assert_close(model.standardize.mean, mean, rtol=0, atol=0)
        torch.testing.assert_close(model.standardize.std, std, rtol=0, atol=0)
    model.eval()
    whole = model(test)
    torch.testing.assert_close(torch.cat([model(test[i:i + 1]) for i in range(len(test))]), whole)  # row by row
    torch.testing.assert_close(model.standardize(test[:1]), (test[:1] - mean) / std)


def check_constant_column_is_only_centred(tab):
    train = table()
    train[:, 2] = 7.0
    layer = tab.Standardize(train)
    assert layer.std[2] == 1.0
    out = layer(torch.tensor([[0.0, 0.0, 9.0, 0.0, 0.0]]))
    assert out[0, 2] == 2.0
    torch.testing.assert_close(layer(train), tables.standardize(train)[0])


def check_statistics_are_saved_not_trained(tab):
    train = table()
    model = tab.TabularMLP(train, classes=2, hidden=(6,))
    state = model.state_dict()
    assert {"standardize.mean", "standardize.std"} <= set(state)
    assert all(p is not model.standardize.mean and p is not model.standardize.std for p in model.parameters())
    other = tab.TabularMLP(table(seed=3) + 1000, classes=2, hidden=(6,))
    other.load_state_dict(state)
    x = table(seed=4)
    model.eval(), other.eval()
    torch.testing.assert_close(other(x), model(x), rtol=0, atol=0)


def check_layers_and_parameter_count(tab):
    train = table(columns=30)
    model = tab.TabularMLP(train, classes=2, hidden=(64, 32), dropout=0.25)
    assert sum(p.numel() for p in model.parameters()) == (30 * 64 + 64) + (64 * 32 + 32) + (32 * 2 + 2)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(30, 64), (64, 32), (32, 2)]
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 2
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] in ([0.25, 0.25], [])
    default = tab.TabularMLP(train, classes=4)
    assert [m.out_features for m in default.modules() if isinstance(m, nn.Linear)] == [64, 32, 4]
    assert all(m.p == 0.0 for m in default.modules() if isinstance(m, nn.Dropout))
    linear = tab.TabularMLP(train, classes=3, hidden=())  # no hidden layer: multinomial logistic regression
    assert [(m.in_features, m.out_features) for m in linear.modules() if isinstance(m, nn.Linear)] == [(30, 3)]


def check_forward_is_standardise_then_mlp(tab):
    train, x = table(), table(seed=2)
    model = tab.TabularMLP(train, classes=3, hidden=(7, 5)).eval()
    first, second, last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    z = (x - train.mean(0)) / train.std(0)
    expected = last(F.relu(second(F.relu(first(z)))))
    out = model(x)
    assert out.shape == (40, 3) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected)
    assert model(x[:0]).shape == (0, 3)


def check_dropout_only_in_training(tab):
    train = table()
    model = tab.TabularMLP(train, classes=2, hidden=(256,), dropout=0.5)
    model.eval()
    torch.testing.assert_close(model(train), model(train), rtol=0, atol=0)
    model.train()
    assert not torch.equal(model(train), model(train))


def check_errors(tab):
    train = table()
    with pytest.raises(ValueError, match="classes"):
        tab.TabularMLP(train, classes=1)
    for bad in (1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="dropout"):
            tab.TabularMLP(train, classes=2, hidden=(), dropout=bad)  # no nn.Dropout to raise it for you
    with pytest.raises(TypeError, match="floating"):
        tab.Standardize(train.long())
    for bad in (train[:, 0], train[:1], train[None], train.reshape(4, 10, 5)):
        with pytest.raises(ValueError, match="rows"):
            tab.Standardize(bad)
    model = tab.TabularMLP(train, classes=2)
    for columns in (4, 6):
        with pytest.raises(ValueError, match=f"5 feature columns, got {columns}$"):
            model(table(columns=columns))
        with pytest.raises(ValueError, match=f"5 feature columns, got {columns}$"):
            model(table(columns=columns).reshape(2, 20, columns))
    assert tab.Standardize(train[:2]).mean.shape == (5,)  # two rows are enough for a std
    wide = torch.randn(3, 300)  # 300 columns: compared as numbers, not as (cached small) int objects
    torch.testing.assert_close(tab.Standardize(wide)(wide), tables.standardize(wide)[0])
    batched = table().reshape(4, 10, 5)  # leading dimensions of any kind: the columns are the last
    torch.testing.assert_close(model.standardize(batched), tables.standardize(train, batched)[1])


def check_learns_badly_scaled_table(tab):
    """Two classes that differ in small columns beside columns of scale 1e3: standardised, an easy problem."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (300,), generator=g)
    x = table(rows=300, columns=6)
    x[:, :2] += (y[:, None] * 2 - 1) * 0.03  # the signal, in the columns of scale 0.01
    torch.manual_seed(0)
    model = tab.TabularMLP(x[:200], classes=2, hidden=(16,))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    fit(model, optimizer, (x[:200], y[:200]), (x[200:], y[200:]), 8, 200, torch.Generator().manual_seed(0))
    assert evaluate(model, x[200:], y[200:])["accuracy"] >= 0.9  # 0.96 (unstandardised: about 0.5)


CHECKS = [check_statistics_are_the_training_rows, check_forward_never_refits, check_constant_column_is_only_centred,
          check_statistics_are_saved_not_trained, check_layers_and_parameter_count,
          check_forward_is_standardise_then_mlp, check_dropout_only_in_training, check_errors,
          check_learns_badly_scaled_table]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_tabular_mlp(tab, check):
    check(tab)


def broken_variants():
    from torchkata.nn import tabular as ref

    class BatchStatistics(ref.Standardize):  # refits on every batch it sees: the test rows' statistics leak in
        def forward(self, x):
            self.mean, self.std = x.mean(0), x.std(0).clamp_min(1e-12)
            return super().forward(x)

    class PopulationStd(ref.Standardize):  # n instead of n - 1: not tables.standardize's statistics
        def __init__(self, train):
            super().__init__(train)
            self.std = train.std(dim=0, correction=0)

    class NoStdGuard(ref.Standardize):  # a constant column divides by 0
        def __init__(self, train):
            super().__init__(train)
            self.std = train.std(dim=0)

    class TrainedStatistics(ref.Standardize):  # parameters: the optimizer would move them
        def __init__(self, train):
            super().__init__(train)
            mean, std = self.mean, self.std
            del self.mean, self.std
            self.mean, self.std = nn.Parameter(mean), nn.Parameter(std)

    def with_layer(layer):
        class Model(ref.TabularMLP):
            def __init__(self, train, *args, **kwargs):
                super().__init__(train, *args, **kwargs)
                self.standardize = layer(train)
        return types.SimpleNamespace(Standardize=layer, TabularMLP=Model)

    class NoActivation(ref.TabularMLP):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.net = nn.Sequential(*[m for m in self.net if not isinstance(m, nn.ReLU)])

    class Unstandardised(ref.TabularMLP):
        def forward(self, x):
            return self.net(x)

    return {  # name: (variant, the check that must reject it)
        "batch_statistics_leak": (with_layer(BatchStatistics), "check_forward_never_refits"),
        "population_std": (with_layer(PopulationStd), "check_statistics_are_the_training_rows"),
        "no_std_guard": (with_layer(NoStdGuard), "check_constant_column_is_only_centred"),
        "trained_statistics": (with_layer(TrainedStatistics), "check_statistics_are_saved_not_trained"),
        "no_activation": (types.SimpleNamespace(Standardize=ref.Standardize, TabularMLP=NoActivation),
                          "check_forward_is_standardise_then_mlp"),
        "unstandardised": (types.SimpleNamespace(Standardize=ref.Standardize, TabularMLP=Unstandardised),
                           "check_forward_is_standardise_then_mlp"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_tabular_mlp_is_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
