"""Build one C++/CUDA extension named in catalog.yaml (rules build_extension_<name>)."""
import sys

from torchkata.pipeline.extensions import build

if len(sys.argv) != 2:
    sys.exit("usage: build_extension.py NAME")
print(f"built {build(sys.argv[1])}")
