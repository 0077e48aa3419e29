"""torchkata: a reproducible PyTorch practice curriculum.

Reference implementations live in one package per topic (tensors, extensions, vision, ...);
`torchkata.experiments.<id>` runs an exercise's experiment; `torchkata.pipeline` is the machinery
the Snakemake rules, the CLI and the tests share.
"""
__version__ = "0.1.0"
