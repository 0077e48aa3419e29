# The graders' mutation scores, outside `all` (a minute an exercise): `snakemake results/a01/mutation.json`, or
# `snakemake mutation` for every done exercise. Mutants of the reference, graded as a learner's starter is
# (torchkata.pipeline.mutation).
from torchkata.pipeline.mutation import EQUIVALENTS_FILE, reference_file


rule mutation_score:
    input:
        reference=lambda wildcards: str(
            reference_file(CATALOG.get(wildcards.exercise).reference)
        ),
        tests=lambda wildcards: f"tests/exercises/test_{CATALOG.get(wildcards.exercise).slug}.py",
        equivalents=lambda wildcards: [
            p
            for p in [f"problems/{wildcards.exercise}/{EQUIVALENTS_FILE}"]
            if Path(p).is_file()
        ],
    output:
        "results/{exercise}/mutation.json",
    log:
        "results/logs/{exercise}/mutation.log",
    conda:
        ENV
    threads: 2
    shell:
        "python -m torchkata.pipeline.mutation {wildcards.exercise} --jobs {threads} --json {output} > {log} 2>&1"


rule mutation:
    input:
        [f"results/{e.id}/mutation.json" for e in CATALOG.done()],
