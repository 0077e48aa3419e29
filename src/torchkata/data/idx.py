"""The IDX format of MNIST and Fashion-MNIST: read and write, plain or gzip-compressed.

Layout (big-endian throughout):
    bytes 0-1   zero
    byte  2     element type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)
    byte  3     number of dimensions
    then        one uint32 per dimension, then the elements in C order.
A file ending in `.gz` is gzip-compressed. Every error names the file it is about.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from torchkata.pipeline.files import atomic_path

# type code -> big-endian numpy dtype
DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
CODES = {dt.newbyteorder("="): code for code, dt in DTYPES.items()}


class IDXError(ValueError):
    """An IDX file is malformed, or two files that belong together disagree."""


def _open(path: Path, mode: str):
    return gzip.open(path, mode) if path.suffix == ".gz" else open(path, mode)


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file, in native byte order."""
    path = Path(path)
    try:
        with _open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:  # gzip raises these for a damaged or cut-off stream
        raise IDXError(f"{path}: cannot read: {err}") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in DTYPES:
        raise IDXError(f"{path}: bad magic number {data[:4].hex() or '(empty file)'}; not an IDX file")
    dtype, ndim = DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: truncated: header names {ndim} dimensions but the file has {len(data)} bytes")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise IDXError(f"{path}: {what}: dims {list(dims)} of {dtype.name} need {expected} bytes, file has {len(data)}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write `array` as IDX (gzip-compressed if `path` ends in .gz), atomically."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    code = CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise IDXError(f"{path}: IDX cannot store dtype {array.dtype}")
    payload = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(DTYPES[code]).tobytes()
    with atomic_path(path) as tmp:
        # mtime=0: the same array gives the same bytes
        with (gzip.GzipFile(tmp, "wb", mtime=0) if path.suffix == ".gz" else open(tmp, "wb")) as f:
            f.write(payload)
    return path


def read_labelled(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """An images file ([N, H, W]) and its labels file ([N]), checked against each other."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise IDXError(f"{images_path}: expected images of shape [N, H, W], got {list(images.shape)}")
    if labels.ndim != 1:
        raise IDXError(f"{labels_path}: expected labels of shape [N], got {list(labels.shape)}")
    if len(images) != len(labels):
        raise IDXError(f"count mismatch: {images_path} has {len(images)} images "
                       f"but {labels_path} has {len(labels)} labels")
    return images, labels
