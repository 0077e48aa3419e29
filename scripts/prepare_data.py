"""Prepare a dataset under data/<name>/: python scripts/prepare_data.py NAME [--source DIR] --out DIR"""
from __future__ import annotations

import argparse
import sys

from torchkata.data import cifar10, digits, fashion_mnist, tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=["fashion-mnist", "cifar10", "digits", "sklearn-tables"])
    parser.add_argument("--source", help="folder of the raw files (fashion-mnist: the four IDX files; cifar10: the "
                                         "six python batches, or none for a generated stand-in)")
    parser.add_argument("--out", required=True, help="folder to write the prepared tensors into")
    args = parser.parse_args(argv)
    if args.name == "fashion-mnist":
        if not args.source:
            parser.error("fashion-mnist needs --source DIR (the folder of the four IDX files)")
        fashion_mnist.prepare(args.source, args.out)
    elif args.name == "cifar10":
        if args.source:
            cifar10.prepare(args.source, args.out)
        else:
            cifar10.generate(args.out)
    elif args.name == "digits":
        digits.prepare(args.out)
    else:
        tables.prepare(args.out)
    print(f"prepared {args.name} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
