# The summary of the whole catalog, and the proof set that `dvc repro` hashes.

SUMMARY_COMMAND = (
    f"python scripts/summarise.py --ran {','.join(e.id for e in PLAN.runnable) or 'none'}"
    f" --capabilities {','.join(sorted(PLAN.capabilities))} --scale {config['scale']} --seed {SEED}"
    " --out-dir results/summary"
)


rule summary:
    input:
        [t for e in PLAN.runnable for t in exercise_targets(e.id)],
    output:
        table=report(
            "results/summary/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
            labels={"figure": "table (CSV download)"},
        ),
        html=report(  # the same table; the report shows HTML inline, a CSV only as a download
            "results/summary/summary.html",
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
    log:
        "results/logs/summary.log",
    shell:
        SUMMARY_COMMAND + " > {log} 2>&1"


# A run that failed (with --keep-going, the others went on) still gets its summary, with the failed exercises
# marked and their errors; the rule above did not run because its inputs are missing.
onerror:
    shell(SUMMARY_COMMAND + " > results/logs/summary.log 2>&1 || true")
    print("torchkata: the summary with the failed exercises and their errors is in results/summary/")


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
