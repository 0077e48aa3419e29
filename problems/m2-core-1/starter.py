"""m2-core-1: the Adam you train a CIFAR-10 CNN with is the one you write for a14. The two exercises share one
reference module and one grader, so there is one file to write: problems/a14/starter.py (ElementwiseOptimizer,
Adam, AdamW, RMSprop). This starter runs that file here, so `torchkata check m2-core-1` grades your a14 solution.

Grade it:  torchkata check m2-core-1
"""
from pathlib import Path

A14_STARTER = Path(__file__).resolve().parents[1] / "a14" / "starter.py"
# executed in this module's namespace: its classes are this exercise's, graded here as they are in a14
exec(compile(A14_STARTER.read_text(encoding="utf-8"), A14_STARTER, "exec"))
