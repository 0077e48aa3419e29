# The summary of the catalog at one scale, the proof sets that DVC hashes, and the runs' records into MLflow
# at the end of every call (a run built on its own, a failed run: every seeded run is an MLflow run).


rule summary:
    input:
        lambda wildcards: [
            t
            for e in PLAN.runnable
            for t in FLOW.exercise_targets(e.id, f"{config['impl']}-{wildcards.scale}")
        ],
    output:
        csv=report(
            "results/summary/{scale}/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
            labels={"figure": "table (CSV download)", "scale": "{scale}"},
        ),
        html=report(  # the same table; the report shows HTML inline, a CSV only as a download
            "results/summary/{scale}/summary.html",
            caption="../report/summary.rst",
            category="Summary",
            labels={"figure": "table", "scale": "{scale}"},
        ),
        png=report(
            "results/summary/{scale}/summary.png",
            caption="../report/summary.rst",
            category="Summary",
            labels={"figure": "status, bench ratios, wall times", "scale": "{scale}"},
        ),
    log:
        "results/logs/summary-{scale}.log",
    run:
        bookkeeping.summary(log[0], CATALOG, PLAN, config, wildcards.scale, output)


rule proof:
    input:
        f"results/{{exercise}}/{{variant}}/runs/seed-{SEED}/metrics.json",
    output:
        metrics="results/proof/{variant}/{exercise}/metrics.json",
        artifacts=directory("results/proof/{variant}/{exercise}/artifacts"),
    log:
        "results/logs/{exercise}/{variant}/proof.log",
    run:
        bookkeeping.proof(log[0], input[0], output.metrics, output.artifacts)


onsuccess:
    bookkeeping.log_new_records(
        Path("results"), TRACKING["uri"], TRACKING["experiment"], STARTED
    )


# A run that failed (with --keep-going, the others went on) still gets its summary, with the failed
# exercises marked and their errors, and its FAILED runs in MLflow.
onerror:
    bookkeeping.after_failure(CATALOG, PLAN, config, STARTED)
