"""b04-06: a CNN for Fashion-MNIST. Shapes and errors, a few training steps that must fit a small batch,
data order from the seeded generator, and evaluate() on hand-made cases. No full training here: the
experiment (results/b04-06/...) measures the test accuracy."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks

EXERCISE = "b04-06"


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def synthetic(n=200, classes=10, seed=0):
    """uint8 images [n, 28, 28]: a fixed random pattern per class plus noise, which a CNN fits in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(classes, 28, 28, generator=g) * 200
    labels = torch.arange(n) % classes
    images = patterns[labels] + torch.rand(n, 28, 28, generator=g) * 55
    return images.to(torch.uint8), labels


def check_output_shapes(impl):
    x = torch.randn(5, 1, 28, 28)
    assert impl.FashionCNN()(x).shape == (5, 10)
    model = impl.FashionCNN(channels=(4, 8), hidden=16, num_classes=3)
    assert model(x).shape == (5, 3)
    rebuilt = impl.FashionCNN(**model.config)  # the checkpoint's config rebuilds the same architecture
    rebuilt.load_state_dict(model.state_dict())
    model.eval(), rebuilt.eval()
    torch.testing.assert_close(rebuilt(x), model(x))


def check_wrong_shape(impl):
    model = impl.FashionCNN()
    for shape in [(5, 28, 28), (5, 3, 28, 28), (5, 1, 32, 32), (784,)]:
        with pytest.raises(ValueError, match="28"):
            model(torch.randn(shape))


def check_normalize(impl):
    images = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    x = impl.normalize(images)
    assert x.dtype == torch.float32 and x.shape == (3, 1, 28, 28)
    want = (images.float() / 255 - 0.2860) / 0.3530  # Fashion-MNIST's pixel mean and std
    torch.testing.assert_close(x[:, 0], want, atol=2e-3, rtol=0)
    with pytest.raises(ValueError):
        impl.normalize(images.float())
    with pytest.raises(ValueError):
        impl.normalize(images[:, None])


def check_learns(impl):
    """A few epochs on 200 images must fit them: the loss falls and training accuracy passes 0.9."""
    images, labels = synthetic()
    x = impl.normalize(images)
    model = impl.FashionCNN(channels=(8, 16), hidden=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = [impl.train_epoch(model, optimizer, x, labels, 32, g) for _ in range(6)]
    assert losses[-1] < 0.5 * losses[0], losses
    assert impl.evaluate(model, x, labels)["accuracy"] >= 0.9


class Recorder(nn.Module):
    """Logits depend on the input (so batching matters for the loss); remembers which samples it saw."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.seen = []

    def forward(self, x):
        self.seen.append(x[:, 0, 0, 0].long().tolist())
        return x[:, 0, 0, :10] * self.w


def indexed(n):
    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 4
    x[:, 0, 0, 0] = torch.arange(n)  # each sample carries its index
    return x, torch.arange(n) % 10


def check_train_epoch_visits_each_sample_once(impl):
    x, y = indexed(10)
    model = Recorder()
    loss = impl.train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.0), x, y, 4,
                            torch.Generator().manual_seed(0))
    assert [len(b) for b in model.seen] == [4, 4, 2]
    assert sorted(i for b in model.seen for i in b) == list(range(10))
    # the mean over samples, not over batches (the last batch is smaller)
    assert loss == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-6)


def check_order_comes_from_generator(impl):
    orders = []
    for seed in (0, 0, 1):
        x, y = indexed(64)
        model = Recorder()
        impl.train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.0), x, y, 64,
                         torch.Generator().manual_seed(seed))
        orders.append(model.seen[0])
    assert orders[0] == orders[1], "the same seed must give the same order"
    assert orders[0] != orders[2], "a different seed must give a different order"
    assert orders[0] != list(range(64)), "the data must be shuffled"


class Lookup(nn.Module):
    """Predicts the class written in pixel (0, 0); its logits also depend on pixel (0, 1)."""

    def forward(self, x):
        return F.one_hot(x[:, 0, 0, 0].long(), 10) * 3.0 + x[:, 0, 0, 1:11]


def check_evaluate_counts(impl):
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    predicted = torch.tensor([0, 1, 2, 3, 4, 5, 6, 0, 0, 0])  # 7 right
    x = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    x[:, 0, 0, 0] = predicted.float()
    result = impl.evaluate(Lookup(), x, labels, batch_size=3)  # batches of 3, 3, 3, 1
    assert result["correct"] == 7 and result["accuracy"] == pytest.approx(0.7)
    assert torch.equal(result["predictions"], predicted)
    assert result["loss"] == pytest.approx(F.cross_entropy(Lookup()(x), labels).item(), rel=1e-6)


def check_evaluate_in_eval_mode(impl):
    """Dropout and batch statistics are off while evaluating: the same call twice gives the same loss."""
    images, labels = synthetic(40)
    model = impl.FashionCNN(channels=(4, 8), hidden=16, dropout=0.5)
    model.train()
    x = impl.normalize(images)
    first, second = impl.evaluate(model, x, labels, 7), impl.evaluate(model, x, labels, 40)
    assert first["loss"] == pytest.approx(second["loss"], rel=1e-5)


CHECKS = [check_output_shapes, check_wrong_shape, check_normalize, check_learns,
          check_train_epoch_visits_each_sample_once, check_order_comes_from_generator,
          check_evaluate_counts, check_evaluate_in_eval_mode]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_fashion_cnn(impl, check):
    check(impl)


# deliberately broken solutions, each built from the reference with one part wrong


def reference(**broken):
    from torchkata.vision import fashion_cnn

    parts = {name: getattr(fashion_cnn, name) for name in ("FashionCNN", "normalize", "train_epoch", "evaluate")}
    return SimpleNamespace(**{**parts, **broken})


class BlindCNN(nn.Module):
    """A CNN whose forward ignores its input: it can learn the class frequencies, nothing more."""

    def __init__(self, num_classes=10, **config):
        super().__init__()
        self.config = {"num_classes": num_classes, **config}
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x):
        return self.bias.expand(len(x), -1)


def no_step(model, optimizer, images, labels, batch_size, generator):
    model.train()
    return F.cross_entropy(model(images), labels).item()


def unshuffled(model, optimizer, images, labels, batch_size, generator):
    model.train()
    for start in range(0, len(images), batch_size):
        loss = F.cross_entropy(model(images[start:start + batch_size]), labels[start:start + batch_size])
        optimizer.zero_grad(), loss.backward(), optimizer.step()
    return loss.item()


@torch.no_grad()
def train_mode_evaluate(model, images, labels, batch_size=1000):
    logits = torch.cat([model(images[s:s + batch_size]) for s in range(0, len(images), batch_size)])
    predictions = logits.argmax(1)
    correct = int((predictions == labels).sum())
    return {"loss": F.cross_entropy(logits, labels).item(), "accuracy": correct / len(labels),
            "correct": correct, "predictions": predictions}


@pytest.mark.parametrize("broken, rejected_by", [
    ({"FashionCNN": BlindCNN}, "check_learns"),
    ({"train_epoch": no_step}, "check_learns"),
    ({"train_epoch": unshuffled}, "check_order_comes_from_generator"),
    ({"evaluate": train_mode_evaluate}, "check_evaluate_in_eval_mode"),
], ids=["blind-model", "no-optimizer-step", "unshuffled", "evaluate-in-train-mode"])
def test_broken_solution_is_rejected(broken, rejected_by):
    # only the check named to reject it runs: the others would cost a training each and could not change the verdict
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], reference(**broken)) == [rejected_by]
