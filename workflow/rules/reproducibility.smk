# Reproducibility as targets: the same seed twice compared byte for byte, and N seeds from MLflow.


rule determinism:
    input:
        first=f"{run_dir('{exercise}', SEED)}/metrics.json",
        second=f"{run_dir('{exercise}', SEED, 'rerun')}/metrics.json",
    output:
        "results/{exercise}/determinism.json",
    log:
        "results/logs/{exercise}/determinism.log",
    shell:
        "python scripts/check_determinism.py $(dirname {input.first}) $(dirname {input.second})"
        " --out {output} > {log} 2>&1"


rule variance:
    input:
        lambda wildcards: [f"{run_dir(wildcards.exercise, s)}/run.json" for s in config["variance_seeds"]],
    output:
        summary="results/{exercise}/variance.json",
        plot=report(
            "results/{exercise}/variance.png",
            caption="../report/variance.rst",
            category="Variance across seeds",
            labels={"exercise": "{exercise}"},
        ),
    log:
        "results/logs/{exercise}/variance.log",
    shell:
        "python scripts/aggregate_variance.py {input} --out {output.summary} --plot {output.plot} > {log} 2>&1"
