# MLflow: the store and experiment exist before any job logs (parallel jobs must not race to create them).


rule mlflow_init:
    output:
        "results/mlflow/init.json",
    params:
        uri=config["tracking"]["uri"],
        experiment=config["tracking"]["experiment"],
    log:
        "results/logs/mlflow_init.log",
    shell:
        "python scripts/init_tracking.py --uri {params.uri} --experiment {params.experiment}"
        " --out {output} > {log} 2>&1"
