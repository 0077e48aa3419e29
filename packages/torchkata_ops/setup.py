"""Build torchkata-ops from the torchkata checkout it sits in (packages/torchkata_ops/): nothing is copied into it.

- The op library, torchkata_ops/lib/libtorchkata_ops.so: the sources and headers of the ops' entries under
  catalog.yaml's `extensions:`, the entries the project's own builds read, so an edit to a kernel or to a header it
  lists reaches both. The C++ sources always; the CUDA ones where torch has CUDA and there is a GPU, with -DWITH_CUDA,
  which makes the C++ side send CUDA tensors to them. The flags are the project's (pipeline/extensions.py), so the
  library computes the same bits as the project's builds. Each source registers its own operators
  (TORCH_LIBRARY_FRAGMENT), so one library holds them all.
- The Python side, torchkata_ops/__init__.py: the a50 reference, src/torchkata/extensions/ops_package.py, or the file
  that TORCHKATA_OPS_MODULE names (a learner's problems/a50/starter.py).

TORCHKATA_OPS_LIBRARIES (paths separated by os.pathsep): op libraries already built from the same sources, packaged
as they are instead of compiling (the a50 experiment does so at its smoke and default scales).
TORCHKATA_OPS_BUILD: setuptools' working folder (default build/ here), so that builds running at once do not share one.
"""
import os
from pathlib import Path

import yaml
from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parents[2]
OPS = ("relu", "grid_sample", "knn")
MODULE = Path(os.environ.get("TORCHKATA_OPS_MODULE", ROOT / "src/torchkata/extensions/ops_package.py"))
PREBUILT = [Path(p) for p in os.environ.get("TORCHKATA_OPS_LIBRARIES", "").split(os.pathsep) if p]
BUILD = Path(os.environ.get("TORCHKATA_OPS_BUILD", "build")).resolve()


class BuildPy(build_py):
    """The package's files: the module as torchkata_ops/__init__.py, and any prebuilt libraries in lib/."""

    def run(self):
        package = Path(self.build_lib, "torchkata_ops")
        self.mkpath(str(package / "lib"))
        self.copy_file(str(MODULE), str(package / "__init__.py"))
        for library in PREBUILT:
            self.copy_file(str(library), str(package / "lib" / library.name))


class PlatformDistribution(Distribution):
    """A package of Python files and a native library: a wheel for this platform and Python also when it only
    packages prebuilt libraries, and setuptools runs BuildPy although no package folder is listed."""

    def has_ext_modules(self):
        return True

    def has_pure_modules(self):
        return True


def op_library():
    import torch
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where PyYAML has it: the catalog is long
    entries = yaml.load((ROOT / "catalog.yaml").read_text(encoding="utf-8"), Loader=loader)["extensions"]
    cuda = torch.version.cuda is not None and torch.cuda.is_available()
    sources = [s for op in OPS for s in entries[op]["sources"]]
    if cuda:
        sources += [s for op in OPS for s in entries[op].get("cuda_sources", [])]
    headers = sorted({h for op in OPS for h in entries[op].get("headers", [])})
    make = CUDAExtension if cuda else CppExtension
    # absolute paths: setuptools puts each object under its build folder at the source's path
    return make("torchkata_ops.lib.libtorchkata_ops", sources=[str(ROOT / s) for s in sources],
                depends=[str(ROOT / h) for h in headers],
                # after Python's own CFLAGS (-O3 -g), so these win: the project's -O2, and no debug info (-g0)
                extra_compile_args={"cxx": ["-O2", "-g0", "-fopenmp", *(["-DWITH_CUDA"] if cuda else [])],
                                    "nvcc": ["-O2"]},
                extra_link_args=["-fopenmp"])


def build_commands():
    if PREBUILT:
        return {"build_py": BuildPy}
    from torch.utils.cpp_extension import BuildExtension

    # no_python_abi_suffix: the file is lib/libtorchkata_ops.so, loaded with torch.ops.load_library, not imported
    return {"build_py": BuildPy, "build_ext": BuildExtension.with_options(no_python_abi_suffix=True)}


if __name__ == "__main__":  # as pip's build runs it; tests/exercises/test_a50.py imports it to read what it builds
    BUILD.mkdir(parents=True, exist_ok=True)
    setup(packages=[], ext_modules=[] if PREBUILT else [op_library()], cmdclass=build_commands(),
          distclass=PlatformDistribution,
          options={"build": {"build_base": str(BUILD)}, "egg_info": {"egg_base": str(BUILD)}})
