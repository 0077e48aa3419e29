"""The shared training loop: the order, the accumulation, the hooks and the records that exercises rely on."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchkata.training.loop import (batch_order, evaluate, fit, mean_std, one_cycle, over_seeds, plot_histories,
                                     train_epoch)


def data(n=40, features=5, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=g), torch.randint(0, classes, (n,), generator=g)


def model(seed=0, features=5, classes=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(features, 8), nn.Tanh(), nn.Linear(8, classes))


def test_batch_order_covers_every_sample_once_in_seeded_order():
    batches = batch_order(10, 4, torch.Generator().manual_seed(3))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    again = batch_order(10, 4, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
    with pytest.raises(ValueError, match="batch_size"):
        batch_order(10, 0, torch.Generator())


def test_one_epoch_equals_the_loop_written_out():
    x, y = data()
    net, by_hand = model(), model()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    opt_by_hand = torch.optim.SGD(by_hand.parameters(), lr=0.1)
    result = train_epoch(net, opt, x, y, 16, torch.Generator().manual_seed(1))
    total = 0.0
    for idx in torch.randperm(40, generator=torch.Generator().manual_seed(1)).split(16):
        loss = F.cross_entropy(by_hand(x[idx]), y[idx])
        opt_by_hand.zero_grad()
        loss.backward()
        opt_by_hand.step()
        total += loss.item() * len(idx)
    assert result == {"loss": pytest.approx(total / 40, rel=1e-12), "steps": 3}
    for a, b in zip(net.parameters(), by_hand.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_accumulated_micro_batches_give_the_big_batch_gradient():
    x, y = data(n=30)
    grads = {}

    def keep(label):
        return lambda m, step: grads.setdefault(label, []).append([p.grad.clone() for p in m.parameters()])

    for label, batch, k in (("big", 12, 1), ("micro", 4, 3)):
        net = model()
        train_epoch(net, torch.optim.SGD(net.parameters(), lr=0.0), x, y, batch, torch.Generator().manual_seed(2),
                    before_step=keep(label), accumulate=k)
    # lr 0 keeps the parameters; the batches of 4 in threes are the batches of 12 (the same permutation), and
    # the last group (6 samples) is weighted by its own size
    assert len(grads["big"]) == len(grads["micro"]) == 3
    for big, micro in zip(grads["big"], grads["micro"]):
        for a, b in zip(big, micro):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="accumulate"):
        train_epoch(model(), torch.optim.SGD(model().parameters(), lr=0.1), x, y, 4, torch.Generator(),
                    accumulate=0)


def test_before_step_sees_every_step_numbered_across_epochs():
    x, y = data()
    steps = []
    net = model()
    history = fit(net, torch.optim.SGD(net.parameters(), lr=0.1), (x, y), (x, y), epochs=2, batch_size=16,
                  generator=torch.Generator().manual_seed(0), before_step=lambda m, step: steps.append(step))
    assert steps == list(range(6))
    assert [h["epoch"] for h in history] == [1, 2]


def test_fit_logs_and_records_each_epoch_and_learns():
    x, y = data(n=200)
    logged = []
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    history = fit(net, opt, (x, y), (x, y), epochs=4, batch_size=32, generator=torch.Generator().manual_seed(0),
                  scheduler=torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5), log=lambda *a: logged.append(a),
                  prefix="net/")
    assert set(history[0]) == {"epoch", "train_loss", "test_loss", "test_accuracy", "seconds"}
    assert history[-1]["test_loss"] < history[0]["test_loss"]
    assert ("net/test_accuracy", history[2]["test_accuracy"], 3) in logged and len(logged) == 4 * 3
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 / 16)


def test_evaluate_regression_and_classification():
    x, y = data()
    net = model()
    result = evaluate(net, x, y, batch_size=7)
    logits = net(x)
    assert result["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert torch.equal(result["predictions"], logits.argmax(dim=1))
    assert result["correct"] == int((logits.argmax(dim=1) == y).sum()) and not net.training
    targets = torch.randn(40, 3)
    regression = evaluate(net, x, targets, loss_fn=F.mse_loss, batch_size=7)
    assert set(regression) == {"loss"}
    assert regression["loss"] == pytest.approx(F.mse_loss(net(x), targets).item(), rel=1e-6)


def test_mismatched_lengths_are_named():
    x, y = data()
    with pytest.raises(ValueError, match="40 against 39"):
        train_epoch(model(), torch.optim.SGD(model().parameters(), lr=0.1), x, y[:39], 8, torch.Generator())


def test_plot_histories_writes_a_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    class Ctx:
        def figure(self, **kw):
            return Figure(**kw)

        def save_figure(self, fig, name):
            path = tmp_path / f"{name}.png"
            fig.savefig(path)
            return path

    history = [{"epoch": e, "train_loss": 1 / e, "test_loss": 1.1 / e, "test_accuracy": 0.5 + e / 10}
               for e in (1, 2)]
    path = plot_histories(Ctx(), {"a": history, "b": history}, "t", errors={"a": {"test_accuracy": [0.01, 0.02]}})
    assert path.stat().st_size > 1000


def test_mean_std_is_the_sample_spread_over_seeds():
    values = [0.91, 0.93, 0.95, 0.89]
    mean, std = mean_std(values)
    assert mean == pytest.approx(torch.tensor(values, dtype=torch.float64).mean().item())
    assert std == pytest.approx(torch.tensor(values, dtype=torch.float64).std().item())  # n - 1, as torch.std
    assert mean_std([0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        mean_std([])
    mean, std = mean_std([0.5, float("inf")])  # a diverged seed: no spread, not an exception
    assert mean == float("inf") and math.isnan(std)


def test_over_seeds_gives_the_mean_curve_and_its_band_per_epoch():
    runs = [[{"epoch": 1, "loss": 1.0 + s, "acc": 0.5 * s}, {"epoch": 2, "loss": 0.5 * s, "acc": 0.9}] for s in range(3)]
    mean, errors = over_seeds(runs)
    assert [h["epoch"] for h in mean] == [1, 2]
    assert mean[0]["loss"] == pytest.approx(2.0) and mean[1]["loss"] == pytest.approx(0.5)
    assert errors["loss"] == pytest.approx([1.0, 0.5]) and errors["acc"] == pytest.approx([0.5, 0.0])
    assert "epoch" not in errors
    with pytest.raises(ValueError, match="equal length"):
        over_seeds([runs[0], runs[1][:1]])


def test_one_cycle_gives_step_s_the_schedules_rate_after_s_steps():
    def optimizer():
        return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)

    ours, theirs = optimizer(), optimizer()
    before_step = one_cycle(ours, max_lr=0.4, total_steps=20)
    schedule = torch.optim.lr_scheduler.OneCycleLR(theirs, max_lr=0.4, total_steps=20, pct_start=0.25)
    rates = []
    for step in range(20):
        before_step(None, step)
        rates.append(ours.param_groups[0]["lr"])
    expected = [theirs.param_groups[0]["lr"]]
    for _ in range(19):
        schedule.step()
        expected.append(theirs.param_groups[0]["lr"])
    assert rates == expected
    assert max(rates) == pytest.approx(0.4) and rates.index(max(rates)) == 4  # the peak after a quarter
