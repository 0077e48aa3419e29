"""b03-02: an IDX reader (MNIST without torchvision). Checked on files the test writes: every element type,
plain and gzip, 0-d to 4-d and empty shapes, bytes laid out by hand (big-endian), against the project's own
reader (torchkata.data.idx); a bad magic number, a cut-off header, cut-off or trailing data each raise a
ValueError naming the file; load_split pairs a split's images with its labels."""
import ast
import gzip
import inspect
import struct
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from grading import failing_checks
from torchkata.data import idx

EXERCISE = "b03-02"
TORCH_DTYPES = {"uint8": torch.uint8, "int8": torch.int8, "int16": torch.int16, "int32": torch.int32,
                "float32": torch.float32, "float64": torch.float64}


@pytest.fixture(scope="module")
def reader(impl_for):
    return impl_for(EXERCISE)


def write_bytes(folder: Path, name: str, payload: bytes) -> Path:
    path = folder / name
    with (gzip.open(path, "wb") if name.endswith(".gz") else open(path, "wb")) as f:
        f.write(payload)
    return path


def sample(dtype: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Values that use each type's range: negative, large, fractional."""
    rng = np.random.default_rng(seed)
    if dtype.startswith("float"):
        return (rng.standard_normal(shape) * 1e3).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def check_every_type_plain_and_gzip(reader):
    with tempfile.TemporaryDirectory() as tmp:
        for i, dtype in enumerate(TORCH_DTYPES):
            for shape in [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 2), (0, 28, 28)]:
                for suffix in ("", ".gz"):
                    array = sample(dtype, shape, i)
                    path = idx.write_idx(Path(tmp) / f"a-{dtype}-{len(shape)}{suffix}", array)
                    got = reader.read_idx(path)
                    assert isinstance(got, torch.Tensor) and got.dtype == TORCH_DTYPES[dtype], (path, got.dtype)
                    assert tuple(got.shape) == shape, (path, got.shape)
                    assert torch.equal(got, torch.from_numpy(array)), path


def check_bytes_laid_out_by_hand(reader):
    # big-endian elements and dimensions, written without the project's writer
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        int16 = write_bytes(folder, "int16", bytes([0, 0, 0x0B, 1]) + struct.pack(">I", 3)
                            + struct.pack(">3h", -2, 258, 32767))
        assert torch.equal(reader.read_idx(int16), torch.tensor([-2, 258, 32767], dtype=torch.int16))
        int32 = write_bytes(folder, "int32.gz", bytes([0, 0, 0x0C, 2]) + struct.pack(">2I", 1, 2)
                            + struct.pack(">2i", -70000, 2**31 - 1))
        assert torch.equal(reader.read_idx(int32), torch.tensor([[-70000, 2**31 - 1]], dtype=torch.int32))
        f64 = write_bytes(folder, "f64", bytes([0, 0, 0x0E, 1]) + struct.pack(">I", 2)
                          + struct.pack(">2d", 0.1, -1e300))
        assert torch.equal(reader.read_idx(f64), torch.tensor([0.1, -1e300], dtype=torch.float64))
        scalar = write_bytes(folder, "scalar", bytes([0, 0, 0x0D, 0]) + struct.pack(">f", -1.5))  # 0 dimensions
        assert torch.equal(reader.read_idx(scalar), torch.tensor(-1.5))
        big = write_bytes(folder, "big", bytes([0, 0, 0x08, 2]) + struct.pack(">2I", 300, 1)
                          + bytes(range(256)) + bytes(44))
        got = reader.read_idx(big)  # a dimension above 255 needs all four bytes of its size
        assert got.shape == (300, 1) and got[255, 0] == 255 and got[256, 0] == 0
        # the result is a tensor of its own: writing into it works (np.frombuffer alone gives a read-only view)
        got[0, 0] = 7
        assert got[0, 0] == 7


def check_agrees_with_project_reader(reader):
    with tempfile.TemporaryDirectory() as tmp:
        images = sample("uint8", (50, 28, 28), 1)
        labels = sample("uint8", (50,), 2) % 10
        for name, array in {"images.gz": images, "labels": labels}.items():
            path = idx.write_idx(Path(tmp) / name, array)
            assert np.array_equal(reader.read_idx(path).numpy(), idx.read_idx(path))


def expect_error(reader, folder: Path, name: str, payload: bytes, match: str):
    path = write_bytes(folder, name, payload)
    with pytest.raises(ValueError, match=match) as err:
        reader.read_idx(path)
    assert str(path) in str(err.value), f"the error does not name the file: {err.value}"


def check_bad_magic_names_the_file(reader):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        header = struct.pack(">I", 2) + bytes(2)
        for name, magic in {"first-byte": [1, 0, 0x08, 1], "second-byte": [0, 1, 0x08, 1],
                            "unknown-type": [0, 0, 0x0A, 1], "type-07": [0, 0, 0x07, 1]}.items():
            expect_error(reader, folder, name, bytes(magic) + header, "magic")
        for name, payload in {"empty": b"", "three-bytes": bytes([0, 0, 8]), "text.gz": b"P5 28 28 255\n"}.items():
            expect_error(reader, folder, name, payload, "magic")


def check_short_or_long_file_names_the_file(reader):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        good = bytes([0, 0, 0x0C, 2]) + struct.pack(">2I", 2, 3) + bytes(24)
        assert reader.read_idx(write_bytes(folder, "good", good)).shape == (2, 3)
        expect_error(reader, folder, "no-dims", bytes([0, 0, 0x08, 3]), "short|size|truncated")
        expect_error(reader, folder, "cut-header.gz", good[:9], "short|size|truncated")
        expect_error(reader, folder, "cut-data", good[:-1], "short|size|truncated")
        expect_error(reader, folder, "cut-element.gz", good[:-4], "short|size|truncated")
        expect_error(reader, folder, "trailing", good + bytes(1), "long|size|trailing")


def write_split(folder: Path, split: str, n: int, labels_n: int | None = None, gz: bool = True) -> np.ndarray:
    images_stem, labels_stem = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}[split]
    images, labels = sample("uint8", (n, 28, 28), n), np.arange(labels_n or n, dtype=np.uint8) % 10
    idx.write_idx(folder / (images_stem + (".gz" if gz else "")), images)
    idx.write_idx(folder / labels_stem, labels)  # plain: a folder may mix both
    return images


def check_load_split(reader):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train_images, test_images = write_split(folder, "train", 12), write_split(folder, "test", 5, gz=False)
        for split, images in {"train": train_images, "test": test_images}.items():
            x, y = reader.load_split(str(folder), split)
            assert x.dtype == torch.uint8 and torch.equal(x, torch.from_numpy(images))
            assert y.dtype == torch.int64 and torch.equal(y, torch.arange(len(images)) % 10)
        with pytest.raises(ValueError, match="valid"):
            reader.load_split(folder, "valid")


def check_load_split_errors(reader):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
            reader.load_split(folder, "train")
        write_split(folder, "train", 6, labels_n=5)
        with pytest.raises(ValueError, match="train-labels-idx1-ubyte"):  # 6 images, 5 labels
            reader.load_split(folder, "train")
        idx.write_idx(folder / "t10k-images-idx3-ubyte", sample("uint8", (4, 28 * 28), 3))  # not [N, H, W]
        idx.write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(4, dtype=np.uint8))
        with pytest.raises(ValueError, match="t10k-images-idx3-ubyte"):
            reader.load_split(folder, "test")
        idx.write_idx(folder / "t10k-images-idx3-ubyte", sample("uint8", (4, 28, 28), 3))
        idx.write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros((4, 1), dtype=np.uint8))  # labels not [N]
        with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte"):
            reader.load_split(folder, "test")


CHECKS = [check_every_type_plain_and_gzip, check_bytes_laid_out_by_hand, check_agrees_with_project_reader,
          check_bad_magic_names_the_file, check_short_or_long_file_names_the_file, check_load_split,
          check_load_split_errors]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_idx_reader(reader, check):
    check(reader)


def test_reference_reads_by_itself():
    from torchkata.nn import idx_reader as ref

    # the reader is the exercise: not torchvision's, not the project's torchkata.data.idx
    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(ref))):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
    assert not {name for name in imported if "torchvision" in name or name.startswith("torchkata")}, imported


def broken_variants():
    from torchkata.nn import idx_reader as ref

    def variant(**overrides):
        return types.SimpleNamespace(**{**vars(ref), **overrides})

    def little_endian(path):
        out = ref.read_idx(path)
        return out if out.element_size() == 1 else torch.from_numpy(out.numpy().byteswap())

    def lenient(path):  # reads what a header promises and ignores the rest
        path = Path(path)
        data = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
        dims = struct.unpack(f">{data[3]}I", data[4:4 + 4 * data[3]])
        dtype = ref.DTYPES[data[2]]
        count = int(np.prod(dims))
        values = np.frombuffer(data, dtype, count, 4 + 4 * data[3])
        return torch.from_numpy(values.astype(dtype.newbyteorder("=")).reshape(dims))

    def anonymous(path):
        try:
            return ref.read_idx(path)
        except ValueError as err:
            raise ValueError(str(err).replace(str(path), "the file")) from None

    def as_float(path):
        return ref.read_idx(path).float()

    return {  # name: (variant, the check that must reject it)
        "little_endian": (variant(read_idx=little_endian), "check_bytes_laid_out_by_hand"),
        "ignores_the_size": (variant(read_idx=lenient), "check_short_or_long_file_names_the_file"),
        "error_without_the_file": (variant(read_idx=anonymous), "check_bad_magic_names_the_file"),
        "everything_float": (variant(read_idx=as_float), "check_every_type_plain_and_gzip"),
        "labels_not_long": (variant(load_split=lambda folder, split: (ref.load_split(folder, split)[0],
                                                                     ref.load_split(folder, split)[1].int())),
                            "check_load_split"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_reader_is_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
