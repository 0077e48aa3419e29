# Datasets: one rule each, from the raw files at the config path to tensors under data/<name>/. A dataset with
# an optional source (CIFAR-10) and its config path left empty has no input: the prepare step generates a
# labelled stand-in of the same shape.


def _raw_files(name):
    spec = CATALOG.datasets[name]
    generated = spec.get("optional_source") and not config["data"][spec["config_key"]]
    return [] if generated else ancient(FLOW.dataset_source(name))


for _name in CATALOG.datasets:

    rule:
        name:
            f"prepare_{_name.replace('-', '_')}"
        input:
            # ancient(): DVC does not keep mtimes, so the raw files count by their existence
            lambda wildcards, name=_name: _raw_files(name),
        output:
            FLOW.dataset_files(_name),
        log:
            f"results/logs/data/{_name}.log",
        conda:
            ENV
        resources:
            mem_mb=4000,
            runtime=10,
        params:
            dataset=_name,
            source=lambda wildcards, input: f"--source {input[0]}" if input else "",
        shell:
            "python scripts/prepare_data.py {params.dataset} {params.source} --out data/{params.dataset}"
            " > {log} 2>&1"
