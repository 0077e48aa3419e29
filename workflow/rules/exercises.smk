# One named rule per catalog exercise (exercise_<id>), so profiles can set resources per exercise.
# `runs` is a seeded run (the result, and the variance seeds); `rerun` repeats the result's seed
# for the determinism check. A planned exercise's rule exists but stops with "no experiment yet".


def input_arguments(exercise):
    def arguments(wildcards):
        paths = exercise_input_paths(exercise, wildcards.seed) if exercise.done else {}
        return " ".join(f"--input {name}={path}" for name, path in paths.items())

    return arguments


for _exercise in CATALOG.exercises.values():

    rule:
        name:
            f"exercise_{_exercise.slug}"
        input:
            unpack(exercise_dependencies(_exercise)),
        output:
            metrics=f"results/{_exercise.id}/{{kind}}/seed-{{seed}}/metrics.json",
            bench=f"results/{_exercise.id}/{{kind}}/seed-{{seed}}/bench.json",
            run=f"results/{_exercise.id}/{{kind}}/seed-{{seed}}/run.json",
            plots=report(
                directory(f"results/{_exercise.id}/{{kind}}/seed-{{seed}}/plots"),
                patterns=["{figure}.png"],
                caption="../report/exercise.rst",
                category=_exercise.topic,
                subcategory=_exercise.id,
                labels={"exercise": _exercise.id, "figure": "{figure}", "run": "{kind}/seed-{seed}"},
            ),
        params:
            exercise=_exercise.id,
            scale=config["scale"],
            impl=config["impl"],
            uri=config["tracking"]["uri"],
            experiment=config["tracking"]["experiment"],
            inputs=input_arguments(_exercise),
        threads: config["threads"]
        log:
            f"results/logs/{_exercise.id}/{{kind}}-seed-{{seed}}.log",
        shell:
            "python scripts/run_exercise.py {params.exercise} --seed {wildcards.seed}"
            " --purpose {wildcards.kind} --scale {params.scale} --impl {params.impl} --threads {threads}"
            " --tracking-uri {params.uri} --experiment {params.experiment}"
            " --out results/{params.exercise}/{wildcards.kind}/seed-{wildcards.seed} {params.inputs}"
            " > {log} 2>&1"
