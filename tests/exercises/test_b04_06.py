"""b04-06: a CNN for Fashion-MNIST. Shapes and errors, the normalisation, the parts b04-10 and b04-05 rely on
(features, classifier, a separate head, a config that rebuilds the model), channels_last input, and a few epochs of
the shared training loop that must fit a small batch. No full training here: the experiment (results/b04-06/...)
measures the test accuracy."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks
from torchkata.training.loop import evaluate, train_epoch

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


def check_default_config(impl):
    model = impl.FashionCNN()
    assert model.config == {"channels": [32, 64], "hidden": 128, "num_classes": 10, "dropout": 0.25}
    assert (model.head.in_features, model.head.out_features) == (128, 10)


def check_parts(impl):
    """What b04-10 transfers and b04-05 hooks: `features` (conv blocks, 28 -> 7), `classifier` (flatten, the hidden
    layer at index 1, ReLU, dropout) and `head`, called in that order."""
    model = impl.FashionCNN(channels=(4, 8), hidden=16, num_classes=3, dropout=0.5).eval()
    x = torch.randn(2, 1, 28, 28)
    maps = model.features(x)
    assert maps.shape == (2, 8, 7, 7)
    assert isinstance(model.classifier[1], nn.Linear) and model.classifier[1].out_features == 16
    assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in model.classifier)
    assert isinstance(model.head, nn.Linear) and model.head.out_features == 3
    torch.testing.assert_close(model(x), model.head(model.classifier(maps)), rtol=0, atol=0)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.features) == 2


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
    for wrong in (images.float(), images[:, None]):
        with pytest.raises(ValueError, match=r"uint8"):
            impl.normalize(wrong)


def check_channels_last(impl):
    """The experiment trains in channels_last: the model must give the same logits for either layout."""
    model = impl.FashionCNN(channels=(4, 8), hidden=16).eval()
    x = torch.randn(3, 1, 28, 28)
    want = model(x)
    model = model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(model(x.contiguous(memory_format=torch.channels_last)), want)


def check_learns(impl):
    """A few epochs of the shared loop on 100 images must fit them: the loss falls and accuracy passes 0.9."""
    images, labels = synthetic(100)
    x = impl.normalize(images)
    torch.manual_seed(0)
    model = impl.FashionCNN(channels=(4, 8), hidden=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    losses = [train_epoch(model, optimizer, x, labels, 25, g)["loss"] for _ in range(4)]
    assert losses[-1] < 0.5 * losses[0], losses
    assert evaluate(model, x, labels)["accuracy"] >= 0.9


def check_eval_is_deterministic(impl):
    """Dropout is off and batch norm uses its running statistics in eval mode: a sample's logits do not depend on
    the rest of its batch, and two calls agree."""
    images, _ = synthetic(40)
    model = impl.FashionCNN(channels=(4, 8), hidden=16, dropout=0.5).eval()
    x = impl.normalize(images)
    with torch.no_grad():
        torch.testing.assert_close(model(x[:7]), model(x)[:7])


CHECKS = [check_output_shapes, check_default_config, check_parts, check_wrong_shape, check_normalize,
          check_channels_last, check_learns, check_eval_is_deterministic]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_fashion_cnn(impl, check):
    check(impl)


# deliberately broken solutions, each built from the reference with one part wrong


def reference(**broken):
    from torchkata.vision import fashion_cnn

    parts = {name: getattr(fashion_cnn, name) for name in ("FashionCNN", "normalize")}
    return SimpleNamespace(**{**parts, **broken})


def broken_cnn(forward=None, init=None):
    """The reference FashionCNN with its forward (or what __init__ does after the reference's) replaced."""
    from torchkata.vision.fashion_cnn import FashionCNN

    class Broken(FashionCNN):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if init is not None:
                init(self)

    if forward is not None:
        Broken.forward = forward
    return Broken


def blind(self, x):  # ignores the image: it can learn the class frequencies, nothing more
    return self.head(self.classifier(self.features(torch.zeros_like(x))))


def flattens_with_view(self, x):  # a view cannot flatten a channels_last feature map
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"expects [N, 1, 28, 28], got {list(x.shape)}")
    maps = self.features(x)
    return self.head(self.classifier[1:](maps.view(len(maps), -1)))


def unchecked(self, x):
    return self.head(self.classifier(self.features(x)))


def head_in_classifier(model):  # the head folded into the classifier: b04-10 could not swap it
    model.classifier.append(model.head)
    model.head = nn.Identity()


def drop_batch_norm(model):
    model.features = nn.Sequential(*(m for m in model.features if not isinstance(m, nn.BatchNorm2d)))


def forgets_config(model):
    model.config = {"channels": [32, 64]}


def bad_stats(images):
    if images.dtype != torch.uint8 or images.dim() != 3:
        raise ValueError(f"expected uint8 images [N, 28, 28], got {images.dtype}")
    return (images.float() / 255 - 0.5).unsqueeze(1) / 0.5


@pytest.mark.suite_check
@pytest.mark.parametrize("broken, rejected_by", [
    ({"FashionCNN": broken_cnn(forward=blind)}, "check_learns"),
    ({"FashionCNN": broken_cnn(forward=flattens_with_view)}, "check_channels_last"),
    ({"FashionCNN": broken_cnn(forward=unchecked)}, "check_wrong_shape"),
    ({"FashionCNN": broken_cnn(init=head_in_classifier)}, "check_parts"),
    ({"FashionCNN": broken_cnn(init=drop_batch_norm)}, "check_parts"),
    ({"FashionCNN": broken_cnn(init=forgets_config)}, "check_output_shapes"),
    ({"normalize": bad_stats}, "check_normalize"),
], ids=["blind-model", "flattens-with-view", "no-shape-check", "head-in-classifier", "no-batch-norm",
        "config-cannot-rebuild", "wrong-pixel-statistics"])
def test_broken_solution_is_rejected(broken, rejected_by):
    # only the check named to reject it runs: the others would cost a training each and could not change the verdict
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], reference(**broken)) == [rejected_by]
