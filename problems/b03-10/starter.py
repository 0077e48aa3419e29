"""b03-10: a small TensorBoard logging wrapper around a real training (torch.utils.tensorboard.SummaryWriter).

Grade it:  torchkata check b03-10
"""
from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn
from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (what you write with)


class TensorBoardLog:
    """Writes a training's figures into event files under `log_dir`; a context manager that closes itself.
    histogram_every below 1 is a ValueError naming histogram_every."""

    def __init__(self, log_dir: str | Path, histogram_every: int = 1):
        raise NotImplementedError("b03-10: write TensorBoardLog.__init__")

    def log(self, key: str, value: float, step: int) -> None:
        """A scalar under tag `key`: the `log` hook of training.loop.fit (train_loss, test_loss, test_accuracy)."""
        raise NotImplementedError("b03-10: write TensorBoardLog.log")

    def before_step(self, model: nn.Module, step: int) -> None:
        """fit's before_step hook (after backward, before the update): the scalar `grad_norm` (total 2-norm of all
        the gradients) every step; every `histogram_every` steps from step 0, a histogram `weights/<name>` of each
        parameter and `grads/<name>` of each gradient there is (names from model.named_parameters())."""
        raise NotImplementedError("b03-10: write TensorBoardLog.before_step")

    def images(self, tag: str, images: Tensor, step: int) -> None:
        """A batch (N, C, H, W), N >= 1, C 1 or 3, floats in [0, 1], as ONE image: the batch side by side (up to 8
        a row). A wrong shape (named in the message), a non-float dtype (named) or values outside [0, 1] (the
        range found, e.g. "[0, 2]") is a ValueError."""
        raise NotImplementedError("b03-10: write TensorBoardLog.images")

    def close(self) -> None:
        """Flush and close: a reader sees every event afterwards."""
        raise NotImplementedError("b03-10: write TensorBoardLog.close")

    def __enter__(self) -> "TensorBoardLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
