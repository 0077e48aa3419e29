"""Run one seeded experiment of an exercise (the exercise_<id> rules call this); `--help` lists the options.

Every run is forked from a warm process that has imported torch already (torchkata.pipeline.zygote), so it
costs a fork, not torch's import. A determinism rerun (`--purpose rerun`) forks from a second warm process,
started on its own: the check compares runs of two independently started interpreters (each with its own
memory layout), not two copies of one.
"""
import os
import sys
import time

STARTED_AT = time.time()

# Python's string hashing is salted per process unless pinned; a result must not depend on set order.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])

from torchkata.pipeline import zygote  # noqa: E402  (stdlib only: no torch in this process yet)
from torchkata.pipeline.numerics import pin_cpu_code_paths  # noqa: E402

pin_cpu_code_paths()  # before torch loads, in the zygote: results that any x86-64 machine reproduces
if "rerun" in sys.argv[1:]:
    os.environ["TORCHKATA_LINEAGE"] = "rerun"  # another environment, so another warm process (its key)
sys.exit(zygote.call("torchkata.pipeline.runner:main", [*sys.argv[1:], "--started-at", repr(STARTED_AT)]))
