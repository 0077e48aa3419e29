"""DVC's pipeline files, generated from the catalog (`torchkata dvc`; a test checks they are current).

One `reproduce` stage per done exercise (DVC's `foreach`), so `dvc repro reproduce@b04-06` rebuilds one
exercise's result and an edit to one exercise reruns that one only:

    dvc.yaml               the data, and each result at the default scale  -> dvc.lock
    proof/smoke/dvc.yaml   each result at the smoke scale (what CI proves)  -> proof/smoke/dvc.lock

A stage runs the Snakemake target results/proof/<variant>/<id>/ (the result's metrics.json and artifacts)
and depends on the exercise's own files: its experiment, its reference, the torchkata modules they import
(transitively: an edit to the training loop reruns the trainings), what it consumes (a dataset, an
extension's sources, the upstream exercise's proof), and the code every run goes through. DVC's templating
cannot put a list of varying length into `deps`, so every stage has the same number of dependency slots and a
stage with fewer inputs repeats its experiment module in the rest (a repeated dependency changes nothing).
"""
from __future__ import annotations

from pathlib import Path

import yaml

from torchkata.pipeline.catalog import ROOT, Catalog, Exercise
from torchkata.pipeline.imports import source_files
from torchkata.pipeline.workflow import RUNNER_CODE, code_files, module_file, variant

PIPELINE_CODE = [*RUNNER_CODE, "src/torchkata/pipeline/workflow.py", "workflow/rules/exercises.smk"]
HEADER = "# Generated from catalog.yaml by `torchkata dvc`; edit the catalog or torchkata.pipeline.dvc_stages.\n"
# (file, scale); a stage runs in its dvc.yaml's folder unless `wdir` says otherwise
PREPARE_DATA = "scripts/prepare_data.py"
PIPELINES = [("dvc.yaml", "default"), ("proof/smoke/dvc.yaml", "smoke")]


def exercise_deps(catalog: Catalog, exercise: Exercise, scale: str) -> list[str]:
    deps = code_files(exercise, module_file(exercise.reference))
    deps += [f"data/{name}" for name in exercise.datasets]
    deps += [source for name in exercise.extensions
             for source in (*catalog.extensions[name]["sources"], *catalog.extensions[name].get("headers", []))]
    deps += [f"results/proof/{variant('reference', scale)}/{c.source}/metrics.json" for c in exercise.checkpoints]
    return deps


def pipeline(catalog: Catalog, scale: str, wdir: str) -> dict:
    done = catalog.done()
    deps = {e.id: exercise_deps(catalog, e, scale) for e in done}
    slots = max((len(d) for d in deps.values()), default=0)
    items = {e: d + [d[0]] * (slots - len(d)) for e, d in deps.items()}
    proof = f"results/proof/{variant('reference', scale)}/${{key}}"
    stage = {
        **({"wdir": wdir} if wdir != "." else {}),
        "cmd": f"snakemake --cores ${{scales.{scale}.threads}} --config scale={scale} impl=reference -- {proof}/metrics.json",
        "deps": [*PIPELINE_CODE, *(f"${{item[{i}]}}" for i in range(slots))],
        "params": [{"config.yaml": ["seed", f"scales.{scale}"]}],  # relative to wdir, unlike `vars`
        "outs": [f"{proof}/artifacts"],
        "metrics": [{f"{proof}/metrics.json": {"cache": False}}],
    }
    stages: dict = {}
    if scale == "default":  # the data stages live once, in the root pipeline
        stages |= data_stages(catalog)
    if items:
        stages["reproduce"] = {"foreach": items, "do": stage}
    return {"vars": [f"{wdir}/config.yaml" if wdir != "." else "config.yaml"], "stages": stages}


def data_stages(catalog: Catalog) -> dict:
    stages = {}
    for name, spec in catalog.datasets.items():
        key = spec["config_key"]
        source = f" --source ${{data.{key}}}" if key else ""
        folder = [f"${{data.{key}}}"] if key else []
        stage = {}
        if key and spec.get("optional_source"):
            # the folder may be left empty (a stand-in is generated): the stage follows the config value instead
            source, folder, stage = f" --source=${{data.{key}}}", [], {"params": [{"config.yaml": [f"data.{key}"]}]}
        stages[name.replace("-", "_")] = {
            "cmd": f"python scripts/prepare_data.py {name}{source} --out data/{name}",
            # the modules the script imports, not all of torchkata.data: an exercise's loader there is no input
            "deps": [*folder, *source_files(ROOT, PREPARE_DATA)],
            **stage,
            "outs": [f"data/{name}"],
        }
    return stages


def render(catalog: Catalog) -> dict[Path, str]:
    """path -> text of each generated pipeline file."""
    files = {}
    for name, scale in PIPELINES:
        path = ROOT / name
        wdir = Path(*[".."] * (len(Path(name).parts) - 1)).as_posix() if len(Path(name).parts) > 1 else "."
        body = yaml.safe_dump(pipeline(catalog, scale, wdir), sort_keys=False, width=120)
        files[path] = HEADER + f"# {scale} scale: `dvc repro {name}` rebuilds and hashes every done exercise's result.\n" + body
    return files
