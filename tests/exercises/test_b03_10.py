"""b03-10: a TensorBoard logging wrapper around a real training; the event files it writes are read back with
TensorBoard's own EventAccumulator (scalars, histograms, an image)."""
import io
import math
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from grading import failing_checks
from torchkata.training.loop import fit

EXERCISE = "b03-10"
EPOCHS, BATCH, N = 3, 20, 60  # 3 steps an epoch: steps 0..8


@pytest.fixture(scope="module")
def tb(impl_for):
    return impl_for(EXERCISE)


def read(folder) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    events.Reload()
    return events


def train(tb, folder, histogram_every=1, record=None):
    """A small real training (a linear layer and an MLP head on random blobs) through the shared loop."""
    torch.manual_seed(0)
    x = torch.randn(N, 4)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    model[0].bias.requires_grad_(False)  # a parameter without a gradient
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    snapshots = {}

    def before_step(m, step):
        snapshots[step] = {name: (p.detach().clone(), None if p.grad is None else p.grad.clone())
                           for name, p in m.named_parameters()}
        logger.before_step(m, step)

    with tb.TensorBoardLog(folder, histogram_every=histogram_every) as logger:
        history = fit(model, optimizer, (x, y), (x[:20], y[:20]), EPOCHS, BATCH, torch.Generator().manual_seed(0),
                      log=logger.log, before_step=before_step)
    return history, snapshots


@pytest.fixture(scope="module")
def run(tb):
    folder = tempfile.mkdtemp(prefix="b03-10-")
    history, snapshots = train(tb, folder)
    return SimpleNamespace(folder=folder, history=history, snapshots=snapshots, events=read(folder))


def check_event_file_written(tb, run):
    files = list(Path(run.folder).glob("events.out.tfevents.*"))
    assert len(files) == 1 and files[0].stat().st_size > 0


def check_epoch_scalars(tb, run):
    for key in ("train_loss", "test_loss", "test_accuracy"):
        scalars = run.events.Scalars(key)
        assert [s.step for s in scalars] == [1, 2, 3], key
        np.testing.assert_allclose([s.value for s in scalars], [h[key] for h in run.history], rtol=1e-6)


def check_grad_norm(tb, run):
    scalars = run.events.Scalars("grad_norm")
    assert [s.step for s in scalars] == list(range(9))
    for s in scalars:
        grads = [g for _, g in run.snapshots[s.step].values() if g is not None]
        want = math.sqrt(sum(float(g.pow(2).sum()) for g in grads))
        assert s.value == pytest.approx(want, rel=1e-5)


def check_histograms(tb, run):
    tags = run.events.Tags()["histograms"]
    assert sorted(tags) == sorted([f"weights/{n}" for n in ("0.weight", "0.bias", "2.weight", "2.bias")] +
                                  [f"grads/{n}" for n in ("0.weight", "2.weight", "2.bias")])
    for tag in tags:
        kind, name = tag.split("/", 1)
        events = run.events.Histograms(tag)
        assert [e.step for e in events] == list(range(9)), tag
        for e in events:
            weight, grad = run.snapshots[e.step][name]
            values = (weight if kind == "weights" else grad).double()
            h = e.histogram_value
            assert h.num == values.numel(), tag
            assert h.min == pytest.approx(float(values.min()), rel=1e-6, abs=1e-12)
            assert h.max == pytest.approx(float(values.max()), rel=1e-6, abs=1e-12)
            assert h.sum == pytest.approx(float(values.sum()), rel=1e-5, abs=1e-9)
            assert h.sum_squares == pytest.approx(float(values.pow(2).sum()), rel=1e-5, abs=1e-12)


def check_histogram_every(tb, run):
    with tempfile.TemporaryDirectory() as folder:
        train(tb, folder, histogram_every=4)
        events = read(folder)
        assert [e.step for e in events.Histograms("weights/0.weight")] == [0, 4, 8]
        assert [e.step for e in events.Histograms("grads/2.bias")] == [0, 4, 8]
        assert len(events.Scalars("grad_norm")) == 9  # the norm still every step
    with tempfile.TemporaryDirectory() as folder:
        model = nn.Linear(2, 1)
        with tb.TensorBoardLog(folder) as logger:  # by default every step
            for step in range(2):
                logger.before_step(model, step)
        assert [e.step for e in read(folder).Histograms("weights/weight")] == [0, 1]
    with pytest.raises(ValueError, match="histogram_every"):
        tb.TensorBoardLog(tempfile.mkdtemp(), histogram_every=0)


def decode(event) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))


def check_images(tb, run):
    g = torch.Generator().manual_seed(1)
    grey, colour = torch.rand(3, 1, 5, 4, generator=g), torch.rand(2, 3, 5, 4, generator=g)
    with tempfile.TemporaryDirectory() as folder:
        with tb.TensorBoardLog(folder) as logger:
            logger.images("digits", grey, step=7)
            logger.images("colour", colour, step=2)
        events = read(folder)
        assert sorted(events.Tags()["images"]) == ["colour", "digits"]
        (image,) = events.Images("digits")
        assert image.step == 7 and (image.width, image.height) == (12, 5)  # three side by side
        pixels = decode(image)
        for i in range(3):
            want = (grey[i, 0] * 255).numpy()
            block = pixels[:, 4 * i:4 * i + 4]
            assert np.abs(block[..., 0] - want).max() <= 1 and (block[..., 0] == block[..., 2]).all()
        (image,) = events.Images("colour")
        assert image.step == 2 and (image.width, image.height) == (8, 5)
        want = (colour[1].permute(1, 2, 0) * 255).numpy()
        assert np.abs(decode(image)[:, 4:] - want).max() <= 1


def check_image_errors(tb, run):
    with tempfile.TemporaryDirectory() as folder, tb.TensorBoardLog(folder) as logger:
        for bad, words in [(torch.rand(1, 5, 4), r"\(1, 5, 4\)"), (torch.rand(2, 3, 4), r"\(2, 3, 4\)"),
                           (torch.rand(1, 1, 1, 2, 2), r"\(1, 1, 1, 2, 2\)"), (torch.rand(2, 2, 5, 4), r"\(2, 2, 5, 4\)"),
                           (torch.rand(0, 1, 5, 4), r"\(0, 1, 5, 4\)"),
                           (torch.randint(0, 255, (2, 1, 5, 4), dtype=torch.uint8), "uint8"),
                           (torch.tensor([[[[0.0, 2.0]]]]), r"\[0, 2\]"), (torch.full((1, 1, 2, 2), -0.5), r"-0.5")]:
            with pytest.raises(ValueError, match=words):
                logger.images("bad", bad, step=0)
        logger.images("edge", torch.tensor([[[[0.0, 1.0]]]]), step=0)  # both ends of [0, 1] are fine


def check_closes(tb, run):
    folder = tempfile.mkdtemp(prefix="b03-10-")  # kept: a writer never closed may still write into it
    logger = tb.TensorBoardLog(folder)
    logger.log("loss", 1.5, 3)
    logger.close()  # flushes: everything written is readable, nothing is lost
    assert [(s.step, s.value) for s in read(folder).Scalars("loss")] == [(3, 1.5)]
    with tb.TensorBoardLog(folder) as logger:
        logger.log("other", 2.0, 0)
    assert read(folder).Scalars("other")[0].value == 2.0


CHECKS = [check_event_file_written, check_epoch_scalars, check_grad_norm, check_histograms, check_histogram_every,
          check_images, check_image_errors, check_closes]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_tensorboard(tb, run, check):
    check(tb, run)


class NoHistograms:
    """Writes the scalars but never a histogram."""

    def __new__(cls, folder, histogram_every=1):
        from torchkata.nn import tensorboard_log

        logger = tensorboard_log.TensorBoardLog(folder, histogram_every)
        logger.before_step = lambda model, step: None
        return logger


class FirstGradientNorm:
    """Logs the norm of the first parameter's gradient, not of all of them. (A logger that is never closed is no
    broken variant here: the writer's thread appends each event to the file within milliseconds anyway.)"""

    def __new__(cls, folder, histogram_every=1):
        from torchkata.nn import tensorboard_log

        logger = tensorboard_log.TensorBoardLog(folder, histogram_every)

        def before_step(model, step):
            first = next(p for p in model.parameters() if p.grad is not None)
            logger.writer.add_scalar("grad_norm", float(first.grad.norm()), step)

        logger.before_step = before_step
        return logger


@pytest.mark.suite_check
@pytest.mark.parametrize("broken", [NoHistograms, FirstGradientNorm], ids=["no_histograms", "first_gradient_norm"])
def test_broken_logger_is_rejected(broken):
    fake = SimpleNamespace(TensorBoardLog=broken)
    folder = tempfile.mkdtemp(prefix="b03-10-broken-")
    try:
        history, snapshots = train(fake, folder)
        run = SimpleNamespace(folder=folder, history=history, snapshots=snapshots, events=read(folder))
    except Exception:
        return  # rejected before the checks ran
    assert failing_checks([lambda impl, c=c: c(impl, run) for c in CHECKS], fake)
