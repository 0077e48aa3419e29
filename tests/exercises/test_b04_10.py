"""b04-10: transfer learning from b04-06's checkpoint to scikit-learn's digits. Loading the pretrained
conv features under a new classifier and head, freezing, the digits' preprocessing, and the experiment's
handling of a damaged upstream checkpoint."""
import re
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks
from torchkata.pipeline.catalog import load_catalog
from torchkata.pipeline.checkpoint import CheckpointError, save_checkpoint
from torchkata.pipeline.runner import RunContext
from torchkata.vision.fashion_cnn import MEAN, STD, FashionCNN

EXERCISE = "b04-10"
SMALL = {"channels": (4, 8), "hidden": 16}


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def pretrained_checkpoint():
    """A stand-in for b04-06's model.pt: a small FashionCNN with non-default weights and batch-norm statistics."""
    model = FashionCNN(**SMALL)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.rand_like(t))
    return {"state_dict": model.state_dict(), "config": model.config, "classes": [str(i) for i in range(10)]}


def features(model):
    """The conv part's parameters and buffers: what b04-10 transfers."""
    return {k: v.clone() for k, v in model.state_dict().items() if k.startswith("features.")}


def digits_like(n=60):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 5
    patterns = torch.randint(0, 17, (5, 8, 8), generator=g)
    return patterns[labels].to(torch.uint8), labels


def check_digits_to_fashion(impl):
    images, _ = digits_like(6)
    x = impl.digits_to_fashion(images)
    assert x.dtype == torch.float32 and x.shape == (6, 1, 28, 28)
    want = (F.interpolate(images.double().unsqueeze(1) / 16, size=(28, 28), mode="bilinear") - MEAN) / STD
    torch.testing.assert_close(x.double(), want, atol=1e-5, rtol=0)
    for wrong in (images.reshape(6, 64), images.unsqueeze(1)):  # flat rows, and a channel dim: both refused
        with pytest.raises(ValueError, match=re.escape(str(list(wrong.shape)))):
            impl.digits_to_fashion(wrong)


def check_from_pretrained(impl):
    checkpoint = pretrained_checkpoint()
    model = impl.from_pretrained(checkpoint, num_classes=5)
    want = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("features.")}
    got = features(model)
    assert got.keys() == want.keys()
    for k in want:  # conv weights and batch-norm (statistics too) come from the checkpoint
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=0, msg=k)
    model.eval()
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 5)
    # a new classifier and head, even when the class count is the source task's
    same = impl.from_pretrained(checkpoint, num_classes=10)
    for k in ("head.weight", "classifier.1.weight"):
        assert not torch.equal(same.state_dict()[k], checkpoint["state_dict"][k]), f"{k} was not replaced"


def check_head_phase_freezes_the_rest(impl):
    images, labels = digits_like()
    x = impl.digits_to_fashion(images)
    model = impl.from_pretrained(pretrained_checkpoint(), num_classes=5)
    before, head_before = features(model), model.head.weight.clone()
    seen = []
    losses = impl.fine_tune(model, x, labels, epochs=2, head_epochs=2, lr=1e-2, full_lr=1e-3, batch_size=16,
                            generator=torch.Generator().manual_seed(0), on_epoch=lambda e, l: seen.append((e, l)))
    assert len(losses) == 2 and seen == [(1, losses[0]), (2, losses[1])]
    assert not torch.equal(model.head.weight, head_before)
    for k, v in features(model).items():
        if "running" not in k and "num_batches" not in k:  # batch-norm statistics may adapt
            torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=f"{k} changed while frozen")


def check_full_phase_trains_everything_and_learns(impl):
    images, labels = digits_like()
    x = impl.digits_to_fashion(images)
    model = impl.from_pretrained(pretrained_checkpoint(), num_classes=5)
    conv_before = model.features[0].weight.clone()
    losses = impl.fine_tune(model, x, labels, epochs=12, head_epochs=2, lr=1e-2, full_lr=3e-3, batch_size=16,
                            generator=torch.Generator().manual_seed(0))
    assert not torch.equal(model.features[0].weight, conv_before), "the conv layers never learnt"
    assert losses[-1] < 0.5 * losses[0], losses


def check_each_phase_starts_on_time_with_its_learning_rate(impl):
    """One batch per epoch, so an epoch is one Adam step, and Adam's first step moves a weight by about its
    learning rate (m/sqrt(v) = +-1 where the gradient is well above eps): the head moves by `lr` in epoch 1, the
    features stay put through epoch `head_epochs` (3) and move by `full_lr` in the next; 5 epochs, 5 calls."""
    images, labels = digits_like(16)
    x = impl.digits_to_fashion(images)
    model = impl.from_pretrained(pretrained_checkpoint(), num_classes=5)
    snapshots = [(model.head.weight.detach().clone(), model.features[0].weight.detach().clone())]

    def snapshot(epoch, loss):
        snapshots.append((model.head.weight.detach().clone(), model.features[0].weight.detach().clone()))

    lr, full_lr = 0.02, 0.003
    impl.fine_tune(model, x, labels, epochs=5, head_epochs=3, lr=lr, full_lr=full_lr, batch_size=16,
                   generator=torch.Generator().manual_seed(0), on_epoch=snapshot)
    assert len(snapshots) == 6, f"{len(snapshots) - 1} epochs, not 5"
    head_step = (snapshots[1][0] - snapshots[0][0]).abs().max()
    assert head_step == pytest.approx(lr, rel=0.05), f"the head's first step is {head_step}, not lr={lr}"
    for epoch in (1, 2, 3):  # the head phase: features frozen
        assert torch.equal(snapshots[epoch][1], snapshots[0][1]), f"the features moved in epoch {epoch}"
    first_full_step = (snapshots[4][1] - snapshots[3][1]).abs().max()
    assert first_full_step == pytest.approx(full_lr, rel=0.05), (
        f"in epoch 4, the first of the full phase, the features moved by {first_full_step}, not full_lr={full_lr}")


def check_training_follows_the_statement(impl):
    """The whole schedule as the README states it (Adam over the new layers at `lr`; at epoch head_epochs + 1 a
    new Adam over every layer at `full_lr`, kept to the end; training.loop.train_epoch each epoch) gives these
    weights, to within what fused and foreach Adam differ by: their sqrt differs in the last bit, which Adam's
    normalisation grows to about 1e-3 in these 12 steps; another schedule moves weights by about 0.4."""
    from torchkata.training.loop import train_epoch

    images, labels = digits_like(24)
    x = impl.digits_to_fashion(images)
    ours, want = (impl.from_pretrained(pretrained_checkpoint(), num_classes=5) for _ in range(2))
    want.load_state_dict(ours.state_dict())
    settings = dict(epochs=4, head_epochs=1, lr=0.01, full_lr=0.002, batch_size=8)
    torch.manual_seed(5)  # the classifier's dropout draws from the global generator: the same draws for both
    impl.fine_tune(ours, x, labels, generator=torch.Generator().manual_seed(3), **settings)
    torch.manual_seed(5)
    generator = torch.Generator().manual_seed(3)
    want.features.requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in want.parameters() if p.requires_grad], lr=settings["lr"])
    for epoch in range(1, settings["epochs"] + 1):
        if epoch == settings["head_epochs"] + 1:
            want.features.requires_grad_(True)
            optimizer = torch.optim.Adam(want.parameters(), lr=settings["full_lr"])
        train_epoch(want, optimizer, x, labels, settings["batch_size"], generator)
    for (name, got), expected in zip(ours.state_dict().items(), want.state_dict().values()):
        torch.testing.assert_close(got, expected, rtol=1e-2, atol=1e-2, msg=lambda m, name=name: f"{name}: {m}")


CHECKS = [check_digits_to_fashion, check_from_pretrained, check_head_phase_freezes_the_rest,
          check_full_phase_trains_everything_and_learns, check_each_phase_starts_on_time_with_its_learning_rate,
          check_training_follows_the_statement]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_transfer(impl, check):
    check(impl)


# deliberately broken solutions, each built from the reference with one part wrong


def reference(**broken):
    from torchkata.vision import transfer

    parts = {name: getattr(transfer, name) for name in ("digits_to_fashion", "from_pretrained", "fine_tune")}
    return SimpleNamespace(**{**parts, **broken})


def ignores_weights(checkpoint, num_classes):
    model = FashionCNN(**checkpoint["config"])
    model.head = nn.Linear(model.head.in_features, num_classes)
    return model


def keeps_old_head(checkpoint, num_classes):
    model = FashionCNN(**checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model


def keeps_hidden_layer(checkpoint, num_classes):
    model = FashionCNN(**checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    model.head = nn.Linear(model.head.in_features, num_classes)
    return model


def unfreezes_late(model, images, labels, *, epochs, head_epochs, **rest):
    from torchkata.vision.transfer import fine_tune

    return fine_tune(model, images, labels, epochs=epochs, head_epochs=head_epochs + 1, **rest)


def one_learning_rate(model, images, labels, *, lr, full_lr, **rest):
    from torchkata.vision.transfer import fine_tune

    return fine_tune(model, images, labels, lr=lr, full_lr=lr, **rest)


def fresh_optimizer_every_epoch(model, images, labels, *, epochs, head_epochs, lr, full_lr, batch_size, generator,
                                on_epoch=None):
    from torchkata.training.loop import train_epoch
    from torchkata.vision.transfer import set_trainable

    set_trainable(model, head_only=True)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for epoch in range(1, epochs + 1):
        if epoch > head_epochs:
            set_trainable(model, head_only=False)
            optimizer = torch.optim.Adam(model.parameters(), lr=full_lr)
        train_epoch(model, optimizer, images, labels, batch_size, generator)
    return []


def never_frozen(model, images, labels, *, epochs, head_epochs, lr, full_lr, batch_size, generator, on_epoch=None):
    from torchkata.training.loop import train_epoch

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return [train_epoch(model, optimizer, images, labels, batch_size, generator)["loss"] for _ in range(epochs)]


@pytest.mark.suite_check
@pytest.mark.parametrize("broken, rejected_by", [
    ({"from_pretrained": ignores_weights}, "check_from_pretrained"),
    ({"from_pretrained": keeps_old_head}, "check_from_pretrained"),
    ({"from_pretrained": keeps_hidden_layer}, "check_from_pretrained"),
    ({"fine_tune": never_frozen}, "check_head_phase_freezes_the_rest"),
    ({"digits_to_fashion": lambda images: images.float().unsqueeze(1) / 16}, "check_digits_to_fashion"),
    ({"fine_tune": unfreezes_late}, "check_each_phase_starts_on_time_with_its_learning_rate"),
    ({"fine_tune": one_learning_rate}, "check_each_phase_starts_on_time_with_its_learning_rate"),
    ({"fine_tune": fresh_optimizer_every_epoch}, "check_training_follows_the_statement"),
], ids=["ignores-weights", "keeps-old-head", "keeps-hidden-layer", "never-frozen", "not-upsampled", "unfreezes-late",
        "one-learning-rate", "fresh-optimizer-every-epoch"])
def test_broken_solution_is_rejected(broken, rejected_by):
    # only the check named to reject it runs: the others would cost a training each and could not change the verdict
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], reference(**broken)) == [rejected_by]


# the experiment end to end on tiny inputs: b04-06 writes a checkpoint, b04-10 consumes it


def context(exercise_id, impl, tmp_path, inputs, **params):
    from importlib import import_module

    exercise = load_catalog().get(exercise_id)
    experiment = import_module(exercise.experiment_module)
    ctx = RunContext(exercise=exercise, impl=impl, seed=0, scale="smoke", threads=torch.get_num_threads(),
                     params={**experiment.SCALES["smoke"], **params}, generator=torch.Generator().manual_seed(0),
                     out=tmp_path / exercise_id, inputs=inputs)
    return experiment, ctx


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """Tiny fake Fashion-MNIST, the real digits, and a b04-06 checkpoint trained on the fake images briefly."""
    from torchkata.data import digits
    from torchkata.vision import fashion_cnn

    root = tmp_path_factory.mktemp("b04-10")
    g = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        save_checkpoint({"images": torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8, generator=g),
                         "labels": torch.arange(64) % 10}, root / "fashion-mnist" / f"{split}.pt")
    digits.prepare(root / "digits")
    experiment, ctx = context("b04-06", fashion_cnn, root, {"fashion-mnist": root / "fashion-mnist"},
                              train_size=64, test_size=64, bench_seconds=0.01)
    experiment.run(ctx)
    return {"fashion-mnist": root / "fashion-mnist", "digits": root / "digits",
            "b04-06": root / "b04-06" / "artifacts" / "model.pt"}


def test_experiment_runs_on_the_upstream_checkpoint(impl, upstream, tmp_path):
    experiment, ctx = context(EXERCISE, impl, tmp_path, upstream, train_size=40, test_size=100, epochs=2,
                              head_epochs=1, source_test_size=64)
    experiment.run(ctx)
    m = ctx.metrics
    assert m["gain"] == pytest.approx(m["finetuned_accuracy"] - m["scratch_accuracy"])
    assert m["train_images"] == 40 and m["test_images"] == 100
    assert (tmp_path / EXERCISE / "plots" / "finetune_vs_scratch.png").is_file()


def test_corrupted_checkpoint_names_its_path(impl, upstream, tmp_path):
    broken = tmp_path / "model.pt"
    broken.write_bytes(upstream["b04-06"].read_bytes()[:500])
    experiment, ctx = context(EXERCISE, impl, tmp_path, {**upstream, "b04-06": broken})
    with pytest.raises(CheckpointError, match="corrupted") as err:
        experiment.run(ctx)
    assert str(broken) in str(err.value)

    save_checkpoint({"state_dict": {}}, broken)  # readable, but not a b04-06 model
    with pytest.raises(CheckpointError, match="lacks keys"):
        experiment.run(ctx)
