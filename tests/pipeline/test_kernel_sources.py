"""Every CUDA source compiles with nvcc for the GPUs the project targets, sm_80 (A100) and sm_90 (H100): CUDA 13's
nvcc is on every machine of this project, though nothing it builds runs without a GPU. The C++ side of each
extension with a CUDA half compiles with WITH_CUDA too (the CPU torch wheel ships ATen's CUDA headers), so the code
that hands CUDA tensors to the kernel is checked here, not only on a machine with a GPU."""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from torchkata.pipeline.catalog import ROOT, load_catalog

EXTENSIONS = load_catalog().extensions
CUDA_SOURCES = sorted(ROOT.glob("csrc/**/*.cu"))
WITH_CUDA_HALF = sorted(name for name, spec in EXTENSIONS.items() if spec.get("cuda_sources"))
ARCHES = ("80", "90")
NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="no nvcc on this machine (CUDA 13 is on the project's)")


def cuda_home() -> Path:
    """The toolkit nvcc belongs to (/usr/local/bin/nvcc may be a wrapper script around it)."""
    if os.environ.get("CUDA_HOME"):
        return Path(os.environ["CUDA_HOME"])
    version = subprocess.run([NVCC, "--version"], capture_output=True, text=True).stdout
    release = version.split("release ")[1].split(",")[0]
    return Path(f"/usr/local/cuda-{release}") if Path(f"/usr/local/cuda-{release}").is_dir() else Path("/usr/local/cuda")


def test_every_cuda_source_is_built_by_an_extension():
    listed = {(ROOT / s).resolve() for spec in EXTENSIONS.values() for s in spec.get("cuda_sources", [])}
    assert {p.resolve() for p in CUDA_SOURCES} == listed


@needs_nvcc
@pytest.mark.parametrize("source", CUDA_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_cuda_source_compiles(source, tmp_path):
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in ARCHES]
    done = subprocess.run([NVCC, "-c", str(source), "-o", str(tmp_path / "kernel.o"), "-std=c++17", *gencode],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "kernel.o").stat().st_size > 0


# The one header of c10/cuda that torch's CUDA build generates and its CPU wheel leaves out; its content as that
# build writes it (shared libraries).
CUDA_CMAKE_MACROS = "#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n"


@needs_nvcc
@pytest.mark.parametrize("name", WITH_CUDA_HALF)
def test_cuda_dispatch_compiles(name, tmp_path):
    from torch.utils.cpp_extension import include_paths

    generated = tmp_path / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    generated.parent.mkdir(parents=True)
    generated.write_text(CUDA_CMAKE_MACROS)
    includes = [*include_paths(), str(tmp_path), str(cuda_home() / "include"), sysconfig.get_paths()["include"],
                *(p for p in sys.path if p.endswith("site-packages"))]
    for source in EXTENSIONS[name]["sources"]:
        done = subprocess.run(["g++", "-fsyntax-only", "-std=c++17", "-DWITH_CUDA", "-DTORCH_EXTENSION_NAME=check",
                               *(f"-I{p}" for p in includes), str(ROOT / source)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]


@pytest.mark.parametrize("name", sorted(EXTENSIONS))
def test_included_headers_are_listed(name):
    """A header of csrc/ that a source includes is in the extension's `headers`, so an edit to it rebuilds the
    library and reruns its consumers."""
    spec = EXTENSIONS[name]
    listed = {(ROOT / h).resolve() for h in spec.get("headers", [])}
    for source in (*spec["sources"], *spec.get("cuda_sources", [])):
        path = ROOT / source
        for line in path.read_text().splitlines():
            if line.startswith('#include "'):
                header = (path.parent / line.split('"')[1]).resolve()
                assert header in listed, f"{source} includes {header.relative_to(ROOT)}, not in {name}'s headers"
