"""Which ATen ops a run calls, and what that says about its results on another CPU model.

Under the pinned code paths (`numerics`) an op's arithmetic comes from one of three places: ATen's own kernels,
held to AVX2 (the same machine code on every x86-64 CPU with AVX2), MKL's BLAS under MKL_CBWR (matrix products
and convolutions; the doctor's probes check they agree), or MKL's vector math library (VML), which backs a few
elementwise functions. VML is where CPU models part: sqrt there is 1 ulp off the exact result in places, not the
same places on an AMD EPYC and an Intel Xeon. The determinism rerun records its ops (`OpTrace`), and
`doctor.cross_cpu` classifies the run from them and the committed fingerprints (`proof/fingerprints.json`).
"""
from __future__ import annotations

from torch.utils._python_dispatch import TorchDispatchMode

_portable_depth = [0]  # > 0 inside numerics.sqrt: its float64 sqrt is rounded back to an exact float32


def op_name(func, args) -> str:
    """'aten.exp' for aten.exp.default and aten.exp_ alike; pow(x, 0.5) is sqrt (ATen routes it there)."""
    name = str(func.overloadpacket).rstrip("_")
    if name == "aten.pow" and len(args) > 1 and isinstance(args[1], float) and args[1] == 0.5:
        return "aten.sqrt"
    return name


class OpTrace(TorchDispatchMode):
    """Records the ATen ops called under it; the calls themselves are untouched (the determinism check, which
    compares a traced rerun with the untraced result, would see it otherwise)."""

    def __init__(self):
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not _portable_depth[0]:
            self.ops.add(op_name(func, args))
        return func(*args, **(kwargs or {}))


class portable_region:
    """Ops inside are made portable by their caller (numerics.sqrt): not recorded."""

    def __enter__(self):
        _portable_depth[0] += 1

    def __exit__(self, *exc):
        _portable_depth[0] -= 1
