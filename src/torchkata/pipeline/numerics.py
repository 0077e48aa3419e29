"""The same floating-point results on any x86-64 CPU, not only on the one that wrote dvc.lock.

Left to themselves, torch's CPU libraries pick code paths by the instruction sets of the CPU they find
(AVX-512 here, AVX2 there), each summing in another order: the same seed then trains to other weights on
another machine (seen: b04-06 at 0.9162 with AVX-512 on every path, 0.9134 with ATen alone held to AVX2). So:
- ATen's vectorised kernels are held to AVX2, which every x86-64 CPU of the last decade has;
- MKL (matrix products) runs its conditional-numerical-reproducibility path, the same on Intel and AMD;
- oneDNN and NNPACK are switched off (`disable_cpu_dispatch_libraries`): their kernels are chosen by ISA and
  cache size, and convolutions then go through im2col and MKL's matrix product instead.
- torch.sqrt is not among those paths: on CPU it is MKL's vector sqrt, which is 1 ulp off the exact result in
  places, and not in the same places on an AMD EPYC and an Intel Xeon (whatever MKL_CBWR says). So is every
  optimizer that calls it (Adam, AdamW and RMSprop in their default foreach form). The experiments use `sqrt`
  below and the fused Adam/AdamW, which agree; `torchkata doctor` checks all of this on a machine.
This costs about half again on a CNN's training time (b04-06: 120–129 s against 78 s per run), the price of a
`dvc.lock` that any machine can check. The variables are defaults: set them in the environment to choose
otherwise (and lose that).
"""
from __future__ import annotations

import os
import sys

PORTABLE_CPU_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE,STRICT"}
PORTABLE_CPU_CAPABILITY = "AVX2"


def pin_cpu_code_paths() -> None:
    """Set PORTABLE_CPU_ENV (where not set); both libraries read it once, on first use, so before torch loads."""
    if "torch" in sys.modules:
        raise RuntimeError("pin_cpu_code_paths() must run before torch is imported: ATen and MKL read their "
                           "code path once, when torch loads")
    for name, value in PORTABLE_CPU_ENV.items():
        os.environ.setdefault(name, value)


def disable_cpu_dispatch_libraries() -> None:
    import torch

    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)


def cpu_code_path() -> dict:
    """What this process runs, for run.json: a result made on another path is not expected to match bitwise."""
    import torch

    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkl_cbwr": os.environ.get("MKL_CBWR", ""),
            "mkldnn": torch.backends.mkldnn.enabled,
            "nnpack": torch.backends.nnpack.is_available() and torch._C._get_nnpack_enabled()}


def sqrt(x):
    """sqrt that is the same on every x86-64 CPU: float32 through float64 and back is correctly rounded (the
    double result is within an ulp, and the float32 sqrt of a float32 never lies that close to a rounding
    boundary); float64 and other dtypes have no wider type to go through, so they keep torch.sqrt."""
    import torch

    if x.dtype in (torch.float32, torch.float16, torch.bfloat16):
        with portable_region():  # an op trace must not count this float64 sqrt as torch.sqrt's
            return x.double().sqrt().to(x.dtype)
    return x.sqrt()


# --- which ops a run calls: what its results depend on across CPU models ------------------------------------
# Under the pins above an op's arithmetic is ATen's own (held to AVX2: the same machine code on every x86-64 CPU
# with AVX2), MKL's BLAS (under MKL_CBWR), or MKL's vector math library (VML), which backs a few elementwise
# functions and is where CPU models part (sqrt). The determinism rerun records its ops (`op_trace`), and
# doctor.cross_cpu classifies the run from them and the committed fingerprints.

_portable_depth = [0]  # > 0 inside `sqrt`: its float64 sqrt is rounded back to an exact float32


class portable_region:
    """Ops inside are made portable by their caller (`sqrt`): an op trace does not record them."""

    def __enter__(self):
        _portable_depth[0] += 1

    def __exit__(self, *exc):
        _portable_depth[0] -= 1


def op_name(func, args) -> str:
    """'aten.exp' for aten.exp.default and aten.exp_ alike; pow(x, 0.5) is sqrt (ATen routes it there)."""
    name = str(func.overloadpacket).rstrip("_")
    if name == "aten.pow" and len(args) > 1 and isinstance(args[1], float) and args[1] == 0.5:
        return "aten.sqrt"
    return name


def op_trace():
    """A TorchDispatchMode that records the names of the ATen ops called under it in `.ops` and leaves the calls
    alone (the determinism check, which compares a traced rerun with the untraced result, would see it
    otherwise). Built on call: this module is imported before torch loads."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class OpTrace(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not _portable_depth[0]:
                self.ops.add(op_name(func, args))
            return func(*args, **(kwargs or {}))

    return OpTrace()
