# Datasets: one rule each, from the raw files at the config path to tensors under data/<name>/.

for _name in CATALOG.datasets:

    rule:
        name:
            f"prepare_{_name.replace('-', '_')}"
        input:
            lambda wildcards, name=_name: dataset_source(name),
        output:
            dataset_files(_name),
        params:
            dataset=_name,
            source=lambda wildcards, input: f"--source {input[0]}" if input else "",
        log:
            f"results/logs/data/{_name}.log",
        shell:
            "python scripts/prepare_data.py {params.dataset} {params.source} --out data/{params.dataset}"
            " > {log} 2>&1"
