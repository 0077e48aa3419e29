"""Create the MLflow store and experiment once, before any job logs (rule mlflow_init)."""
import argparse
from pathlib import Path

from torchkata.pipeline.files import write_json
from torchkata.pipeline.tracking import init_store

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--uri", required=True)
parser.add_argument("--experiment", required=True)
parser.add_argument("--out", type=Path, required=True)
args = parser.parse_args()
experiment_id = init_store(args.uri, args.experiment)
write_json(args.out, {"tracking_uri": args.uri, "experiment": args.experiment, "experiment_id": experiment_id})
print(f"MLflow experiment {args.experiment!r} ({experiment_id}) at {args.uri}")
