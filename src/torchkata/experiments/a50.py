"""a50 experiment: the torchkata-ops package as a user meets it. Build its wheel with pip (offline, against this torch),
make a fresh virtual environment that sees torch, numpy and pytest but not torchkata, install the wheel there, and run
the package's own tests in it; then check that the installed package computes the same bits as the project's builds of
the same kernels (the run's inputs) and torch's answers within rounding, and time each step.

At full the wheel compiles its op library from csrc/ with torch's BuildExtension, as `pip wheel packages/torchkata_ops`
does for a user: half a minute of compiler on two cores, which the six runs of each exercise at the default scale
cannot spend within the main job's two hours. At smoke and default it packages the libraries the DAG's extension rules
compiled from the same sources (the run's inputs) instead: the packaging, the install and the tests, without the
compile.
"""
from __future__ import annotations

import importlib.metadata
import inspect
import os
import subprocess
import sys
import tempfile
import time
import venv
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from torchkata.extensions.kernel_bench import devices, relative_error
from torchkata.pipeline import extensions
from torchkata.pipeline.bench import median_compare
from torchkata.pipeline.catalog import ROOT
from torchkata.pipeline.runner import RunContext

SCALES = {
    "smoke": {"compile": False, "bench": {"relu": 100_000, "grid_sample": [2, 4, 32, 32], "knn": [256, 256]},
              "bench_seconds": 0.02, "repeats": 1},
    "default": {"compile": False, "bench": {"relu": 1_000_000, "grid_sample": [4, 16, 64, 64], "knn": [2048, 2048]},
                "bench_seconds": 0.1, "repeats": 3},
    "full": {"compile": True, "bench": {"relu": 10_000_000, "grid_sample": [8, 32, 128, 128], "knn": [8192, 8192]},
             "bench_seconds": 1.0, "repeats": 3},
}
PACKAGE = ROOT / "packages" / "torchkata_ops"
# what the fresh environment sees of this one, with everything they require: torch to run the package, numpy (torch
# warns at import without it), pytest to run its tests
BORROWED = ("torch", "numpy", "pytest")
KNN_K = 4


def run(ctx: RunContext) -> None:
    for name in ctx.exercise.extensions:  # the project's builds: the bits to match, and what smoke and default package
        extensions.load(name, ctx.input(name))
    steps = {}
    with tempfile.TemporaryDirectory(prefix="a50-") as tmp:
        work = Path(tmp)
        wheel = timed(steps, "build_s", build_wheel, ctx, work)
        python = timed(steps, "venv_s", fresh_environment, work / "venv", work / "borrowed")
        timed(steps, "install_s", install, python, wheel, ctx.threads)
        inputs = evaluation_inputs(ctx.generator)
        installed = timed(steps, "test_s", in_environment, python, work, inputs, ctx.threads)
        with zipfile.ZipFile(wheel) as archive:
            wheel_files = sorted(archive.namelist())
    devices(ctx, installed["has_cuda"])  # records the CUDA half: the package's tests ran on CUDA tensors where it did
    results = installed["results"]
    ours = evaluate(ctx.impl, inputs)  # the same module on the project's builds of the same sources
    native = evaluate(NATIVE, inputs)
    ctx.metrics.update(
        tests_passed=len(installed["passed"]), tests=installed["passed"],
        compiled=ctx.params["compile"], wheel=wheel.name, wheel_files=wheel_files,
        torchkata_importable_in_environment=installed["torchkata_importable"], package_file=installed["package_file"],
        max_abs_difference_to_project_build=max(float((results[k] - ours[k]).abs().max()) for k in ours),
        knn_indices_differing_from_torch=int((results["knn_indices"] != native["knn_indices"]).sum()),
        max_rel_error={k: relative_error(results[k], native[k])[0] for k in native if k != "knn_indices"})
    ctx.bench.update(steps=steps, speed=speed(ctx))
    ctx.bench["ratio"] = ctx.bench["speed"]["relu"]["ratio"]  # package relu forward + backward / torch.relu's


def timed(steps: dict, key: str, fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    steps[key] = time.perf_counter() - start
    return result


def checked(command: list, what: str, **options) -> subprocess.CompletedProcess:
    """Run a command; its exit status and the end of its output in the error when it fails."""
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **options)
    if done.returncode != 0:
        raise RuntimeError(f"a50: {what} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
    return done


def outside_environment(threads: int) -> dict:
    """The environment of a process in the fresh virtual environment: no PYTHONPATH (the job's names torchkata's
    src/), the run's threads, and no .pyc files written into the checkout by its tests."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return env | {"OMP_NUM_THREADS": str(threads), "PYTHONDONTWRITEBYTECODE": "1"}


def build_wheel(ctx: RunContext, work: Path) -> Path:
    """pip wheel of packages/torchkata_ops with this environment's setuptools and torch (no build isolation: the
    library must match the torch it runs with), nothing from an index; the module under test is its Python side."""
    env = os.environ | {"TORCHKATA_OPS_MODULE": ctx.impl.__file__, "TORCHKATA_OPS_BUILD": str(work / "build"),
                        "MAX_JOBS": str(ctx.threads)}  # ninja's parallel compiles: the run's threads
    if not ctx.params["compile"]:
        built = (ctx.input(name).resolve() for name in ctx.exercise.extensions)  # pip builds in the package's folder
        env["TORCHKATA_OPS_LIBRARIES"] = os.pathsep.join(map(str, built))
    checked([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
             "--no-cache-dir", "--disable-pip-version-check", "--wheel-dir", work / "dist", PACKAGE],
            "pip wheel", env=env)
    (wheel,) = (work / "dist").glob("*.whl")
    return wheel


def requirement_closure(names) -> list[importlib.metadata.Distribution]:
    """The installed distributions of `names` and of everything they require (extras and other platforms' markers
    left out)."""
    found, todo = {}, list(names)
    while todo:
        dist = importlib.metadata.distribution(todo.pop())
        key = canonicalize_name(dist.metadata["Name"])
        if key not in found:
            found[key] = dist
            requirements = (Requirement(text) for text in dist.requires or ())
            todo += [r.name for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]
    return [found[key] for key in sorted(found)]


def top_level_entries(dist: importlib.metadata.Distribution) -> set[str]:
    """The files and folders a distribution installed at the top of site-packages (from its RECORD)."""
    paths = (line.split(",", 1)[0] for line in (dist.read_text("RECORD") or "").splitlines())
    return {p.split("/", 1)[0] for p in paths if p and not p.startswith("..")} - {"__pycache__"}


def fresh_environment(folder: Path, borrowed: Path) -> Path:
    """A virtual environment of this Python (no pip: this environment's pip installs into it) that sees, of this
    environment's packages, BORROWED and their requirements: links to their files in one folder that a .pth file
    names. A venv reads the .pth files of its own site-packages only, so torchkata's editable install, a .pth file
    here, is not seen there. Returns its python."""
    borrowed.mkdir()
    # a folder that several distributions share (a namespace package, such as CUDA torch's nvidia/) is one folder here
    entries = {entry: dist.locate_file(entry)
               for dist in requirement_closure(BORROWED) for entry in top_level_entries(dist)}
    for entry, path in sorted(entries.items()):
        (borrowed / entry).symlink_to(path)
    venv.create(folder, with_pip=False, symlinks=True)
    site_packages = folder / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (site_packages / "borrowed.pth").write_text(f"{borrowed}\n")
    return folder / "bin" / "python"


def install(python: Path, wheel: Path, threads: int) -> None:
    """pip install of the wheel into the environment (this pip, run by its python); torch, its requirement, is found
    there, so nothing is fetched."""
    checked([sys.executable, "-m", "pip", "--python", python, "install", "--no-index", "--no-compile", "--no-cache-dir",
             "--disable-pip-version-check", wheel], "pip install", env=outside_environment(threads))


def evaluation_inputs(g: torch.Generator) -> dict:
    """Seeded float64 operands of the three ops, and the weights of a loss sum(output * weights) for each."""
    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    return {"x": randn(1000), "image": randn(2, 3, 16, 16),
            "grid": torch.rand(2, 8, 8, 2, generator=g, dtype=torch.float64) * 2.4 - 1.2,  # some points outside
            "query": randn(200, 3), "reference": randn(500, 3), "k": KNN_K,
            "relu_weights": randn(1000), "grid_sample_weights": randn(2, 3, 8, 8), "knn_weights": randn(200, KNN_K)}


def evaluate(ops, inputs):
    """name -> tensor: each op's output on the inputs, the gradients of sum(output * weights), kNN's indices. The
    fresh environment runs this function's source on the installed package: it uses nothing but torch."""
    calls = {"relu": (lambda x: ops.relu(x), ["x"]),
             "grid_sample": (lambda image, grid: ops.grid_sample(image, grid, False), ["image", "grid"]),
             "knn": (lambda query, reference: ops.knn(query, reference, inputs["k"])[0], ["query", "reference"])}
    results = {"knn_indices": ops.knn(inputs["query"], inputs["reference"], inputs["k"])[1]}
    for name, (fn, operands) in calls.items():
        leaves = [inputs[operand].clone().requires_grad_() for operand in operands]
        out = fn(*leaves)
        grads = torch.autograd.grad((out * inputs[f"{name}_weights"]).sum(), leaves)
        results[name] = out.detach()
        results |= {f"{name}_grad_{operand}": grad for operand, grad in zip(operands, grads)}
    return results


# torch's own ops: torch.relu, F.grid_sample, and kNN as torch.cdist with topk
NATIVE = SimpleNamespace(
    relu=torch.relu,
    grid_sample=lambda image, grid, align_corners: F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros",
                                                                 align_corners=align_corners),
    knn=lambda query, reference, k: (torch.cdist(query, reference) ** 2).topk(k, largest=False))

IN_ENVIRONMENT = """
import importlib.util, sys
from pathlib import Path
import pytest
import torch
work, threads, tests = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(threads)
exit_code = pytest.main(["-q", "-p", "no:cacheprovider", f"--junitxml={work / 'tests.xml'}", tests])
if exit_code != 0:
    sys.exit(f"pytest exit code {exit_code}")
import torchkata_ops  # the installed package, as the tests imported it
torch.save({"results": evaluate(torchkata_ops, torch.load(work / "inputs.pt")), "has_cuda": torchkata_ops.has_cuda(),
            "torchkata_importable": importlib.util.find_spec("torchkata") is not None,
            "package_file": str(Path(torchkata_ops.__file__).relative_to(sys.prefix))}, work / "outputs.pt")
"""


def in_environment(python: Path, work: Path, inputs: dict, threads: int) -> dict:
    """In the environment, from a folder outside the checkout, in one process (torch is imported once): the package's
    tests, which must all pass, then `evaluate` on the installed package. Returns the names of the tests that passed
    (not skipped), evaluate's results, whether the library has its CUDA kernels, whether torchkata can be imported
    there, and where the package was imported from."""
    torch.save(inputs, work / "inputs.pt")
    checked([python, "-c", inspect.getsource(evaluate) + IN_ENVIRONMENT, work, threads, PACKAGE / "tests"],
            "the package's tests in the fresh environment", cwd=work, env=outside_environment(threads))
    cases = ElementTree.parse(work / "tests.xml").iter("testcase")
    passed = sorted(case.get("name") for case in cases if case.find("skipped") is None)
    return torch.load(work / "outputs.pt") | {"passed": passed}


def speed(ctx: RunContext) -> dict:
    """Forward + backward through the package's Functions (on the project's builds, in this process) over torch's
    own ops, float32, CPU: the kernels' speed plus what an autograd.Function costs a call."""
    g, sizes = ctx.generator, ctx.params["bench"]
    n, c, h, w = sizes["grid_sample"]
    queries, points = sizes["knn"]
    operands = {"relu": [torch.randn(sizes["relu"], generator=g)],
                "grid_sample": [torch.randn(n, c, h, w, generator=g), torch.rand(n, h, w, 2, generator=g) * 2.2 - 1.1],
                "knn": [torch.randn(queries, 3, generator=g), torch.randn(points, 3, generator=g)]}
    calls = {"relu": lambda ops, x: ops.relu(x), "grid_sample": lambda ops, x, grid: ops.grid_sample(x, grid, False),
             "knn": lambda ops, q, r: ops.knn(q, r, 8)[0]}

    def forward_backward(ops, name):
        leaves = [t.clone().requires_grad_() for t in operands[name]]

        def step():
            with torch.enable_grad():
                return torch.autograd.grad(calls[name](ops, *leaves).sum(), leaves)
        return step

    return {name: median_compare(forward_backward(ctx.impl, name), forward_backward(NATIVE, name),
                                 ctx.params["bench_seconds"], ctx.params["repeats"]) for name in calls}
