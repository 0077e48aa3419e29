"""Portable CPU numerics: the code paths a result run takes are pinned before torch loads, and recorded."""
import json
import os
import subprocess
import sys

import pytest
import torch

from torchkata.pipeline.numerics import PORTABLE_CPU_CAPABILITY, PORTABLE_CPU_ENV, cpu_code_path
from torchkata.pipeline.seeding import seed_everything

HAS_AVX2 = torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
CLEAN_ENV = "import os\nfor name in {names}: os.environ.pop(name, None)\n".format(names=sorted(PORTABLE_CPU_ENV))


def python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", CLEAN_ENV + code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.skipif(not HAS_AVX2, reason="this CPU has no AVX2: ATen cannot be held to it")
def test_pinned_before_torch_loads_the_run_takes_the_portable_path():
    path = json.loads(python("from torchkata.pipeline.numerics import pin_cpu_code_paths, cpu_code_path\n"
                             "pin_cpu_code_paths()\n"
                             "from torchkata.pipeline.seeding import seed_everything\n"
                             "seed_everything(0, 1)\n"
                             "import json; print(json.dumps(cpu_code_path()))\n"))
    assert path == {"cpu_capability": PORTABLE_CPU_CAPABILITY, "mkl_cbwr": PORTABLE_CPU_ENV["MKL_CBWR"],
                    "mkldnn": False, "nnpack": False}


@pytest.mark.skipif(bool(PORTABLE_CPU_ENV.keys() & os.environ.keys()), reason="this process is pinned itself")
def test_unpinned_process_reports_its_own_path():
    path = json.loads(python("import json, torch\nfrom torchkata.pipeline.numerics import cpu_code_path\n"
                             "print(json.dumps(cpu_code_path()))\n"))
    assert path["mkl_cbwr"] == "" and path["mkldnn"] is True
    assert path["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_pinning_after_torch_is_refused_with_the_reason():
    from torchkata.pipeline.numerics import pin_cpu_code_paths

    with pytest.raises(RuntimeError, match="before torch is imported"):
        pin_cpu_code_paths()


def test_seeding_switches_off_isa_chosen_libraries():
    seed_everything(0, 1)
    assert not torch.backends.mkldnn.enabled and not cpu_code_path()["nnpack"]
    x = torch.randn(16, 3, 8, 8, requires_grad=True)
    conv = torch.nn.Conv2d(3, 4, 3)
    conv(x).sum().backward()  # still runs, through im2col and the matrix product
    assert x.grad is not None and x.grad.shape == x.shape
