# Reproducibility as targets: the same seed twice compared byte for byte, and N seeds from MLflow.


rule determinism:
    input:
        first=f"results/{{exercise}}/{{variant}}/runs/seed-{SEED}/metrics.json",
        second=f"results/{{exercise}}/{{variant}}/rerun/seed-{SEED}/metrics.json",
        # the rerun's record lists the ATen ops it called: with the fingerprints, whether other CPU models agree
        second_record=f"results/{{exercise}}/{{variant}}/rerun/seed-{SEED}/run.json",
        fingerprints="proof/fingerprints.json",
        tracking="results/mlflow/init.json",
    output:
        "results/{exercise}/{variant}/determinism.json",
    log:
        "results/logs/{exercise}/{variant}/determinism.log",
    params:
        uri=TRACKING["uri"],
        experiment=TRACKING["experiment"],
    run:
        bookkeeping.determinism(log[0], input.first, input.second, output[0], **params)


rule variance:
    input:
        runs=lambda wildcards: [
            f"{d}/run.json"
            for d in FLOW.variance_run_dirs(wildcards.exercise, wildcards.variant)
        ],
        tracking="results/mlflow/init.json",
    output:
        summary="results/{exercise}/{variant}/variance.json",
        plot=report(
            "results/{exercise}/{variant}/variance.png",
            caption="../report/variance.rst",
            category="Variance across seeds",
            labels={"exercise": "{exercise}", "variant": "{variant}"},
        ),
    log:
        "results/logs/{exercise}/{variant}/variance.log",
    params:
        uri=TRACKING["uri"],
        experiment=TRACKING["experiment"],
    run:
        bookkeeping.variance(log[0], input.runs, output.summary, output.plot, **params)
