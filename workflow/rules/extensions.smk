# C++/CUDA extensions: each built once, by its own rule; consumers depend on the built library.

for _name, _spec in CATALOG.extensions.items():

    rule:
        name:
            f"build_extension_{_name}"
        input:
            _spec["sources"],
            _spec.get("cuda_sources", []),
            _spec.get("headers", []),
            # the compiler flags live here: a change rebuilds every library
            "src/torchkata/pipeline/extensions.py",
        output:
            extension_library(_name),
        log:
            f"results/logs/build/{_name}.log",
        conda:
            ENV
        resources:
            mem_mb=4000,
            runtime=15,
        params:
            extension=_name,
        shell:
            "python scripts/build_extension.py {params.extension} > {log} 2>&1"
