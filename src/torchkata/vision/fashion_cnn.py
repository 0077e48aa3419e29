"""b04-06: a small CNN for Fashion-MNIST, in the style of pytorch/examples' mnist.

Two conv blocks (conv 3x3 -> batch norm -> ReLU -> 2x2 max pool: 28 -> 14 -> 7) and a two-layer
classifier. Batch norm lets a few epochs of Adam reach ~92% test accuracy on two CPU threads.
The data lives in memory as one tensor; each epoch visits it in an order drawn from a seeded
torch.Generator, so a run is repeatable without DataLoader workers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# mean and std of the Fashion-MNIST training pixels scaled to [0, 1]
MEAN, STD = 0.2860, 0.3530
IMAGE_SHAPE = (1, 28, 28)


def normalize(images: Tensor) -> Tensor:
    """uint8 images [N, 28, 28] (0..255) -> float32 [N, 1, 28, 28] with zero mean and unit std."""
    if images.dtype != torch.uint8 or images.dim() != 3:
        raise ValueError(f"expected uint8 images [N, 28, 28], got {images.dtype} {list(images.shape)}")
    return ((images.float() / 255 - MEAN) / STD).unsqueeze(1)


class FashionCNN(nn.Module):
    def __init__(self, channels: tuple[int, int] = (32, 64), hidden: int = 128, num_classes: int = 10,
                 dropout: float = 0.25):
        super().__init__()
        self.config = {"channels": list(channels), "hidden": hidden, "num_classes": num_classes, "dropout": dropout}
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * 7 * 7, hidden), nn.ReLU(), nn.Dropout(dropout),
        )
        self.head = nn.Linear(hidden, num_classes)  # kept separate: transfer learning (b04-10) replaces it

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"FashionCNN expects images [N, 1, 28, 28], got {list(x.shape)}")
        return self.head(self.classifier(self.features(x)))


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: Tensor, labels: Tensor,
                batch_size: int, generator: torch.Generator) -> float:
    """One pass over (images, labels) in an order drawn from `generator`; returns the mean training loss."""
    model.train()
    order = torch.randperm(len(images), generator=generator)
    total = 0.0
    for start in range(0, len(images), batch_size):
        idx = order[start:start + batch_size]
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    return total / len(images)


@torch.no_grad()
def evaluate(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> dict:
    """Mean cross-entropy, accuracy, number correct and the predicted labels, in eval mode."""
    model.eval()
    loss, predictions = 0.0, []
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size])
        loss += F.cross_entropy(logits, labels[start:start + batch_size], reduction="sum").item()
        predictions.append(logits.argmax(dim=1))
    predictions = torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)
    correct = int((predictions == labels).sum())
    return {"loss": loss / max(len(images), 1), "accuracy": correct / max(len(images), 1),
            "correct": correct, "predictions": predictions}
