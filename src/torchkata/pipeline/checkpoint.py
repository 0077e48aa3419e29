"""Checkpoints that are whole or absent: written atomically, read with an error that names the file."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from torchkata.pipeline.files import atomic_path


class CheckpointError(RuntimeError):
    pass


def save_checkpoint(obj, path: str | Path) -> Path:
    """torch.save into memory first: saved to a path, the archive's records are named after the file,
    and the temporary file's random name would make equal checkpoints differ byte for byte."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


def load_checkpoint(path: str | Path, required_keys: tuple[str, ...] = ()) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged zip or pickle
        raise CheckpointError(f"checkpoint {path} is corrupted or not a torch checkpoint: {err}") from err
    missing = [k for k in required_keys if k not in obj]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks keys {missing}")
    return obj
