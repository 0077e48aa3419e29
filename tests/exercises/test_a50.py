"""a50: the Python side of the torchkata-ops package (ReLU, grid_sample and kNN kernels as autograd Functions),
graded by the package's own checks (packages/torchkata_ops/tests), run here on the project's builds of the same
kernels; broken Functions that must fail them; and the package's build: its sources read from the catalog, and its
wheel (built once per session, packaging the project's builds). The experiment installs the wheel into a fresh
virtual environment and runs the package's tests there."""
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from torch.autograd.function import once_differentiable

from grading import failing_checks
from torchkata.pipeline import extensions
from torchkata.pipeline.catalog import ROOT, load_catalog

EXERCISE = "a50"
PACKAGE = ROOT / "packages" / "torchkata_ops"


def load_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


package_tests = load_file("torchkata_ops_tests", PACKAGE / "tests" / "test_torchkata_ops.py")
CHECKS = package_tests.CHECKS


@pytest.fixture(scope="module")
def ops(impl_for, extension_library):
    """The module under test, its operators registered by the project's libraries (built once if no rule has)."""
    for name in load_catalog().get(EXERCISE).extensions:
        extensions.load(name, extension_library(name))
    return impl_for(EXERCISE)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory, extension_library):
    """The package's wheel, built once: setuptools' build backend in a fresh interpreter, as `pip wheel` calls it
    (without pip's own start-up), packaging the project's builds of the op libraries (the compile is the
    experiment's, at full scale) and the reference module."""
    from torchkata.extensions import ops_package

    work = tmp_path_factory.mktemp("a50-wheel")
    libraries = [extension_library(name) for name in load_catalog().get(EXERCISE).extensions]
    env = os.environ | {"TORCHKATA_OPS_MODULE": ops_package.__file__, "TORCHKATA_OPS_BUILD": str(work / "build"),
                        "TORCHKATA_OPS_LIBRARIES": os.pathsep.join(map(str, libraries))}
    build = f"from setuptools import build_meta; print(build_meta.build_wheel({str(work / 'dist')!r}))"
    done = subprocess.run([sys.executable, "-c", build], cwd=PACKAGE, env=env, capture_output=True, text=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return work / "dist" / done.stdout.split()[-1]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_package_checks(ops, check):
    check(ops)


# The packaging (setup.py) is given, not the learner's: the next two check it on the reference, not in a learner's grade.
@pytest.mark.suite_check
def test_the_package_builds_the_catalogs_sources():
    """setup.py compiles what catalog.yaml's entries of the exercise's extensions list, the sources the project's own
    builds read, and rebuilds on an edit to a header they list; the CUDA sources where this machine builds them."""
    setup = load_file("torchkata_ops_setup", PACKAGE / "setup.py")
    catalog = load_catalog()
    assert set(setup.OPS) == set(catalog.get(EXERCISE).extensions)
    entries = [catalog.extensions[op] for op in setup.OPS]
    cuda = extensions.with_cuda()
    library = setup.op_library()
    assert sorted(library.sources) == sorted(str(ROOT / s) for e in entries
                                             for s in (*e["sources"], *(e.get("cuda_sources", []) if cuda else [])))
    assert sorted(library.depends) == sorted({str(ROOT / h) for e in entries for h in e.get("headers", [])})
    assert ("-DWITH_CUDA" in library.extra_compile_args["cxx"]) == cuda


@pytest.mark.suite_check
def test_the_wheel_holds_the_module_and_the_libraries(wheel, tmp_path, monkeypatch):
    """A wheel for this Python and platform (it holds native code) that requires torch, with the module as
    torchkata_ops/__init__.py and the op libraries in torchkata_ops/lib/; unpacked as pip installs it, the module
    loads them."""
    from torchkata.extensions import ops_package

    python = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert wheel.name.startswith(f"torchkata_ops-0.1.0-{python}-{python}-") and not wheel.name.endswith("-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path)
        metadata = archive.read("torchkata_ops-0.1.0.dist-info/METADATA").decode()
    assert "Requires-Dist: torch>=2.4" in metadata.splitlines()
    package = tmp_path / "torchkata_ops"
    assert (package / "__init__.py").read_bytes() == Path(ops_package.__file__).read_bytes()
    names = load_catalog().get(EXERCISE).extensions
    for name in names:
        assert (package / "lib" / f"{name}.so").read_bytes() == extensions.library_path(name).read_bytes()
    loaded = []
    monkeypatch.setattr(torch.ops, "load_library", loaded.append)
    load_file("torchkata_ops_unpacked", package / "__init__.py")
    assert loaded == [str(package / "lib" / f"{name}.so") for name in sorted(names)]


def test_the_installed_module_loads_the_libraries_beside_it(impl_for, tmp_path, monkeypatch):
    """Installed as torchkata_ops/__init__.py, the module loads every lib/*.so beside it with torch.ops.load_library
    (empty stand-ins here: the calls are recorded, not made)."""
    package = tmp_path / "torchkata_ops"
    (package / "lib").mkdir(parents=True)
    for name in ("relu.so", "knn.so"):
        (package / "lib" / name).touch()
    (package / "__init__.py").write_text(Path(impl_for(EXERCISE).__file__).read_text())
    loaded = []
    monkeypatch.setattr(torch.ops, "load_library", loaded.append)
    load_file("torchkata_ops_installed", package / "__init__.py")
    assert [str(path) for path in loaded] == [str(package / "lib" / "knn.so"), str(package / "lib" / "relu.so")]


def broken(bug):
    """A fresh copy of the reference module with one deliberate mistake: a Function swapped for a broken subclass, or
    a public function wrapped. Its checks of the arguments stay, so only the mistake can fail a check."""
    from torchkata.extensions import ops_package

    module = load_file(f"broken_{bug}", ops_package.__file__)
    operator = module.operator

    if bug == "relu_backward_passes_everything":
        class ReLU(module.ReLU):
            @staticmethod
            @once_differentiable
            def backward(ctx, grad_y):
                return grad_y  # the identity's gradient: flows where x <= 0 too
        module.ReLU = ReLU
    if bug == "relu_not_once_differentiable":
        class ReLU(module.ReLU):
            @staticmethod
            def backward(ctx, grad_y):  # a second derivative runs the kernel on a graph it cannot record
                return operator("relu_backward")(grad_y, ctx.saved_tensors[0])
        module.ReLU = ReLU
    if bug == "grid_sample_default_align_corners_true":
        grid_sample = module.grid_sample
        module.grid_sample = lambda input, grid, align_corners=True: grid_sample(input, grid, align_corners)
    if bug in ("grid_sample_backward_flips_align_corners", "grid_sample_no_grad_grid"):
        class GridSample(module.GridSample):
            @staticmethod
            @once_differentiable
            def backward(ctx, grad_output):
                input, grid = ctx.saved_tensors
                flipped = bug == "grid_sample_backward_flips_align_corners"
                grad_input, grad_grid = operator("grid_sample_backward")(grad_output, input, grid,
                                                                         ctx.align_corners != flipped)
                return grad_input, None if bug == "grid_sample_no_grad_grid" else grad_grid, None
        module.GridSample = GridSample
    if bug == "knn_float64_through_float32":
        knn = module.knn

        def through_float32(query, reference, k):
            if query.dtype != torch.float64:
                return knn(query, reference, k)
            distances, indices = knn(query.float(), reference.float(), k)
            return distances.double(), indices
        module.knn = through_float32
    if bug.startswith("knn_") and bug != "knn_float64_through_float32":
        class KNN(module.KNN):
            @staticmethod
            @once_differentiable
            def backward(ctx, grad_distances, _grad_indices):
                query, reference, indices = ctx.saved_tensors
                scale = 1 if bug == "knn_gradient_without_2" else 2
                pulls = scale * grad_distances[..., None] * (query[:, None, :] - reference[indices])
                grad_reference = torch.zeros_like(reference)
                if bug == "knn_reference_gradient_assigned":  # a point chosen by several pairs keeps one pull
                    grad_reference[indices.flatten()] = -pulls.flatten(0, 1)
                else:
                    sign = 1 if bug == "knn_reference_gradient_sign" else -1
                    grad_reference.index_add_(0, indices.flatten(), pulls.flatten(0, 1), alpha=sign)
                return pulls.sum(1), grad_reference, None
        module.KNN = KNN
    return module


# each mistake and a check that must reject it
BUGS = {"relu_backward_passes_everything": "check_relu",
        "relu_not_once_differentiable": "check_second_derivative_raises",
        "grid_sample_default_align_corners_true": "check_grid_sample_default_and_strides",
        "grid_sample_backward_flips_align_corners": "check_grid_sample",
        "grid_sample_no_grad_grid": "check_grid_sample",
        "knn_float64_through_float32": "check_knn", "knn_gradient_without_2": "check_knn",
        "knn_reference_gradient_assigned": "check_knn", "knn_reference_gradient_sign": "check_knn"}


@pytest.mark.suite_check
@pytest.mark.parametrize("bug", BUGS)
def test_broken_functions_are_rejected(ops, bug):
    (check,) = [c for c in CHECKS if c.__name__ == BUGS[bug]]
    assert failing_checks([check], broken(bug))


@pytest.mark.suite_check
def test_all_zero_answers_are_rejected(ops):
    """The tolerances are relative to the largest |torch| answer: ops that write zeros must not pass."""
    zeros = broken("none")
    zeros.grid_sample = lambda input, grid, align_corners=False: input.new_zeros(
        input.shape[0], input.shape[1], grid.shape[1], grid.shape[2])
    knn = zeros.knn
    zeros.knn = lambda query, reference, k: (query.new_zeros(query.shape[0], k), knn(query, reference, k)[1])
    assert failing_checks([package_tests.check_grid_sample, package_tests.check_knn], zeros) == ["check_grid_sample",
                                                                                                  "check_knn"]
