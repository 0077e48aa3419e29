"""Entries for tests/pipeline/test_zygote.py, run by `zygote.call` in a forked child or in the client itself.
Each writes what it observed to a file named in its argv."""
import sys

MODULES_BEFORE = set(sys.modules)  # first: what the process had imported before it imported this module

import atexit  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402


def noop(argv):
    """A torch job with no work: its cost is the fixed cost of a job."""
    import torch  # noqa: F401

    return None


def report(argv):
    """argv: OUT SEED. What a job's result depends on; an atexit handler writes OUT.at-exit."""
    import torch  # here: the other entries run in a client without torch's import time

    out, seed = argv
    torch.manual_seed(int(seed))
    values = torch.randn(4).tolist()
    with open(out, "w") as file:
        json.dump({"argv": argv, "cwd": os.getcwd(), "variable": os.environ["TORCHKATA_ZYGOTE_TEST"],
                   "values": values}, file)
    atexit.register(lambda: open(f"{out}.at-exit", "w").close())


def identity(argv):
    """argv: OUT. The process that runs it, and what that process had imported before this module."""
    with open(argv[0], "w") as file:
        json.dump({"pid": os.getpid(), "parent": os.getppid(), "torch_preloaded": "torch" in MODULES_BEFORE,
                   "torchkata_modules": sorted(name for name in MODULES_BEFORE if name.startswith("torchkata"))},
                  file)


def finish(argv):
    """argv: HOW. Prints to stdout and stderr, then returns 3, exits with 4 or raises."""
    how = argv[0]
    print(f"stdout of {how}")
    print(f"stderr of {how}", file=sys.stderr)
    if how == "return":
        return 3
    if how == "exit":
        sys.exit(4)
    raise RuntimeError("raised on purpose")


def sleep(argv):
    """argv: PIDFILE. Writes its pid, then sleeps; SIGTERM ends it with exit code 7."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(7))
    with open(f"{argv[0]}.tmp", "w") as file:
        file.write(str(os.getpid()))
    os.replace(f"{argv[0]}.tmp", argv[0])  # whole or absent for the test that polls it
    time.sleep(60)


def cuda(argv):
    """argv: OUT. Whether CUDA was initialised before this job, and a sum computed on the GPU."""
    import torch

    initialised_before = torch.cuda.is_initialized()
    total = float((torch.ones(1000, device="cuda") * 2).sum())
    with open(argv[0], "w") as file:
        json.dump({"initialised_before": initialised_before, "sum": total}, file)
