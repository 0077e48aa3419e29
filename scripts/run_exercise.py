"""Run one seeded experiment of an exercise (the exercise_<id> rules call this)."""
import argparse
from pathlib import Path

from torchkata.pipeline.numerics import pin_cpu_code_paths

pin_cpu_code_paths()  # before torch loads: results that any x86-64 machine reproduces bitwise

from torchkata.pipeline.runner import PURPOSES, SCALES, run_exercise  # noqa: E402


def name_and_path(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--input wants NAME=PATH, got {text!r}")
    return name, Path(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("exercise")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--scale", choices=SCALES, required=True)
    parser.add_argument("--impl", choices=("reference", "starter"), required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--purpose", choices=PURPOSES, default="runs")
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--input", type=name_and_path, action="append", default=[])
    args = parser.parse_args()
    run_id = run_exercise(args.exercise, seed=args.seed, scale=args.scale, impl=args.impl, threads=args.threads,
                          out=args.out, inputs=dict(args.input), tracking_uri=args.tracking_uri,
                          experiment_name=args.experiment, purpose=args.purpose)
    print(f"{args.exercise} seed {args.seed} ({args.purpose}): MLflow run {run_id}")


if __name__ == "__main__":
    main()
