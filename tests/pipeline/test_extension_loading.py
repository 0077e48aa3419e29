"""Loading a built extension: an op library's operators are registered once per process. A second file with the
same operators would abort the process (torch refuses to register an operator twice, in a static initialiser),
which is what happened when a test built the library in-process (cpp_extension loads its build copy) and then
loaded the installed copy."""
import pytest
import torch

from torchkata.pipeline import extensions


def test_an_op_library_is_registered_once_per_process(monkeypatch, tmp_path):
    loaded = []
    monkeypatch.setattr(torch.ops, "load_library", loaded.append)
    monkeypatch.setattr(extensions, "_LOADED_OPS", {})
    library = tmp_path / "relu.so"
    library.write_bytes(b"")
    assert extensions.load("relu", library) is torch.ops.torchkata
    assert extensions.load("relu", library) is torch.ops.torchkata
    assert loaded == [str(library)], "the second load must not register the operators again"
    other = tmp_path / "other" / "relu.so"
    other.parent.mkdir()
    other.write_bytes(b"")
    with pytest.raises(extensions.ExtensionError, match="registered its operators from .*relu.so"):
        extensions.load("relu", other)

