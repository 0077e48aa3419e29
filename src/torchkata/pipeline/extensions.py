"""Build a C++/CUDA extension once (torch.utils.cpp_extension + ninja) and load the built library.

The build_extension_<name> rule calls `build`; experiments and tests call `load`, which imports the
library the rule wrote and never rebuilds. Sources and build folder come from catalog.yaml.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
from pathlib import Path
from types import ModuleType

from torchkata.pipeline.catalog import ROOT, load_catalog


class ExtensionError(RuntimeError):
    pass


# op library name -> the file this process registered its operators from. An operator can be registered once per
# process: a second file with the same operators would abort the process in its static initialisers.
_LOADED_OPS: dict[str, Path] = {}


def library_path(name: str) -> Path:
    return ROOT / "build" / "extensions" / name / f"{name}.so"


def with_cuda() -> bool:
    """Whether builds here take an extension's CUDA half (its `cuda_sources`): torch built with CUDA, and a GPU."""
    import torch

    return torch.version.cuda is not None and torch.cuda.is_available()


def build(name: str) -> Path:
    """The C++ sources, and where with_cuda() the CUDA ones too (compiled with -DWITH_CUDA, which the C++ side
    reads to dispatch CUDA tensors to its kernel)."""
    from torch.utils.cpp_extension import load as build_and_load

    try:
        spec = load_catalog().extensions[name]
    except KeyError:
        raise ExtensionError(f"no extension {name!r} under `extensions:` in catalog.yaml") from None
    build_dir = library_path(name).parent / "ninja"
    build_dir.mkdir(parents=True, exist_ok=True)
    cuda = with_cuda() and bool(spec.get("cuda_sources"))
    sources = [*spec["sources"], *(spec.get("cuda_sources", []) if cuda else [])]
    built = build_and_load(name=name, sources=[str(ROOT / s) for s in sources], build_directory=str(build_dir),
                           # -fopenmp: at::parallel_for splits work over torch's OpenMP threads (without it, one)
                           extra_cflags=["-O2", "-fopenmp", *(["-DWITH_CUDA"] if cuda else [])],
                           extra_ldflags=["-fopenmp"], extra_cuda_cflags=["-O2"], with_cuda=cuda,
                           is_python_module=not spec.get("ops"),
                           verbose=True)
    # a temporary of this process's own: two test workers may build the same extension at once
    partial = library_path(name).with_suffix(f".{os.getpid()}.tmp")
    shutil.copyfile(built if spec.get("ops") else built.__file__, partial)  # an op library: its path
    partial.replace(library_path(name))
    if spec.get("ops"):  # cpp_extension loaded the build's copy here: its operators are this file's
        _LOADED_OPS[name] = library_path(name).resolve()
    return library_path(name)


def load(name: str, path: Path | None = None) -> ModuleType:
    """Import the built library (default: where `build` puts it): a Python module, or for an op library (catalog
    `ops: true`) the operators it registered, `torch.ops.torchkata`."""
    path = Path(path) if path else library_path(name)
    if not path.is_file():
        raise ExtensionError(f"extension {name!r} is not built ({path} missing): "
                             f"run `snakemake --cores 1 build/extensions/{name}/{name}.so`")
    import torch  # the library links against libtorch, loaded by importing torch

    if load_catalog().extensions.get(name, {}).get("ops"):
        loaded = _LOADED_OPS.get(name)
        if loaded is None:
            torch.ops.load_library(str(path))  # runs its TORCH_LIBRARY registrations
            _LOADED_OPS[name] = path.resolve()
        elif loaded != path.resolve():
            raise ExtensionError(f"extension {name!r}: this process registered its operators from {loaded}; "
                                 f"torch registers an operator once per process, so {path} cannot be loaded too")
        return torch.ops.torchkata

    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
