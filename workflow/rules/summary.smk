# The summary of the whole catalog, and the proof set that `dvc repro` hashes.


rule summary:
    input:
        [t for e in PLAN.runnable for t in exercise_targets(e.id)],
    output:
        table=report(
            "results/summary/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
            labels={"figure": "table"},
        ),
        plot=report(
            "results/summary/summary.png",
            caption="../report/summary.rst",
            category="Summary",
            labels={"figure": "status and bench ratios"},
        ),
    params:
        ran=",".join(e.id for e in PLAN.runnable) or "none",
        capabilities=",".join(sorted(PLAN.capabilities)),
        scale=config["scale"],
        seed=SEED,
    log:
        "results/logs/summary.log",
    shell:
        "python scripts/summarise.py --ran {params.ran} --capabilities {params.capabilities:q}"
        " --scale {params.scale} --seed {params.seed} --out-dir results/summary > {log} 2>&1"


rule proof:
    input:
        [f"{run_dir(e.id, SEED)}/metrics.json" for e in PLAN.runnable],
    output:
        metrics="results/proof/metrics.json",
        artifacts=directory("results/proof/artifacts"),
    log:
        "results/logs/proof.log",
    shell:
        "python scripts/collect_proof.py {input} --metrics-out {output.metrics} --artifacts {output.artifacts}"
        " > {log} 2>&1"
