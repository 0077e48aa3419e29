# One named rule per catalog exercise (exercise_<id>), its resources from the catalog. The path names the
# variant (impl and scale), the purpose and the seed: `runs` is a seeded run (the result, and the variance
# seeds), `rerun` repeats the result's seed in a separate process for the determinism check. A planned
# exercise's rule exists but stops with "no experiment yet".

for _exercise in CATALOG.exercises.values():

    rule:
        name:
            f"exercise_{_exercise.slug}"
        input:
            unpack(FLOW.run_dependencies(_exercise, ancient)),
        output:
            metrics=f"results/{_exercise.id}/{{variant}}/{{kind}}/seed-{{seed}}/metrics.json",
            bench=f"results/{_exercise.id}/{{variant}}/{{kind}}/seed-{{seed}}/bench.json",
            run=f"results/{_exercise.id}/{{variant}}/{{kind}}/seed-{{seed}}/run.json",
            plots=report(
                directory(
                    f"results/{_exercise.id}/{{variant}}/{{kind}}/seed-{{seed}}/plots"
                ),
                patterns=["{figure}.png"],
                caption="../report/exercise.rst",
                category=_exercise.topic,
                subcategory=_exercise.id,
                labels={
                    "exercise": _exercise.id,
                    "figure": "{figure}",
                    "run": "{variant}/{kind}/seed-{seed}",
                },
            ),
        log:
            f"results/logs/{_exercise.id}/{{variant}}/{{kind}}-seed-{{seed}}.log",
        conda:
            ENV
        threads: lambda wildcards: FLOW.threads(wildcards.variant)
        resources:
            **FLOW.run_resources(_exercise),
        params:
            exercise=_exercise.id,
            arguments=FLOW.run_arguments(_exercise),
            # torch's threads come from the path's scale, not from --cores: the same bytes on any machine
            torch_threads=lambda wildcards: FLOW.threads(wildcards.variant),
            figures=lambda wildcards: FLOW.figure_option(
                wildcards.variant, wildcards.kind, wildcards.seed
            ),
        shell:
            "python scripts/run_exercise.py {params.exercise} --seed {wildcards.seed} --purpose {wildcards.kind}"
            " --threads {params.torch_threads} --out results/{params.exercise}/{wildcards.variant}/{wildcards.kind}/seed-{wildcards.seed}"
            " {params.arguments} {params.figures} > {log} 2>&1"
