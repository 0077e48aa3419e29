# MLflow: the store and experiment exist before any job logs. The bookkeeping rules (here, in
# reproducibility.smk and summary.smk) run in Snakemake's own process: MLflow, pandas and matplotlib are
# imported once per call, not once per job (torchkata.pipeline.bookkeeping; profiles/default sets
# force-use-threads, or each would start a Snakemake process of its own).
from torchkata.pipeline import bookkeeping, tracking

tracking.quiet_environment()  # before any job starts: jobs inherit this process's environment


localrules:
    mlflow_init,
    determinism,
    variance,
    summary,
    proof,


rule mlflow_init:
    output:
        "results/mlflow/init.json",
    log:
        "results/logs/mlflow_init.log",
    # MLflow's import and the store's migrations, once; it must not hold up a run's core meanwhile
    threads: 0
    params:
        uri=TRACKING["uri"],
        experiment=TRACKING["experiment"],
    run:
        bookkeeping.init_tracking(log[0], params.uri, params.experiment, output[0])
