"""b03-07 experiment: your tabular MLP against scikit-learn's logistic regression on the same splits of two tables
that scikit-learn ships (breast cancer: 569 rows, 30 features, 2 classes; wine: 178 rows, 13 features, 3 classes).
Each split is drawn from its own seed; both models standardise with the training rows' statistics only (the MLP in
its first layer, the baseline with a StandardScaler in its pipeline). Test accuracy as mean ± std over the splits,
the MLP's curves with the splits' spread. The baseline needs scikit-learn (seconds to import): not at smoke."""
from __future__ import annotations

import time

import torch

from torchkata.data import tables
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, mean_std, over_seeds, plot_histories

SCALES = {
    "smoke": {"tables": ["wine"], "splits": 1, "epochs": 2, "hidden": [16], "baseline": False, "bench_seconds": 0.02},
    "default": {"tables": ["breast_cancer", "wine"], "splits": 8, "epochs": 25, "hidden": [32], "baseline": True,
                "bench_seconds": 0.2},
    "full": {"tables": ["breast_cancer", "wine"], "splits": 30, "epochs": 25, "hidden": [32], "baseline": True,
             "bench_seconds": 1.0},
}
# one hidden layer of 32 with dropout and weight decay: a few hundred rows overfit a bigger MLP (tried: 64-32 with
# little regularisation fell 1 point behind the baseline on breast cancer)
TEST_FRACTION, BATCH_SIZE, LR, WEIGHT_DECAY, DROPOUT = 0.25, 64, 3e-3, 1e-2, 0.2


def logistic_regression(x_train, y_train):
    """scikit-learn's StandardScaler -> LogisticRegression, fitted on the training rows (float64)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x_train.numpy(), y_train.numpy())


def run(ctx: RunContext) -> None:
    p = ctx.params
    histories, bands, finals, seconds, leak = {}, {}, {}, {}, 0.0
    for name in p["tables"]:
        table = tables.load(ctx.input("sklearn-tables"), name)
        classes = len(table["classes"])
        runs, mlp, logreg, seconds[name] = [], [], [], {"mlp": 0.0, "logreg": 0.0}
        for k in range(p["splits"]):
            train, test = tables.split(table, TEST_FRACTION, torch.Generator().manual_seed(ctx.seed * 1000 + k))
            x_train, x_test = train["features"].float(), test["features"].float()
            torch.manual_seed(ctx.seed * 1000 + k)
            model = ctx.impl.TabularMLP(x_train, classes, tuple(p["hidden"]), DROPOUT)
            # the fitted statistics are the training rows' own: nothing of the test rows reached the model
            leak = max(leak, float((model.standardize.mean - x_train.mean(0)).abs().max()),
                       float((model.standardize.std - x_train.std(0)).abs().max()))
            optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
            start = time.perf_counter()
            runs.append(fit(model, optimizer, (x_train, train["targets"]), (x_test, test["targets"]), p["epochs"],
                            BATCH_SIZE, torch.Generator().manual_seed(ctx.seed * 1000 + k)))
            seconds[name]["mlp"] += time.perf_counter() - start
            mlp.append(runs[-1][-1]["test_accuracy"])
            if p["baseline"]:
                start = time.perf_counter()
                baseline = logistic_regression(train["features"], train["targets"])
                seconds[name]["logreg"] += time.perf_counter() - start
                logreg.append(float((baseline.predict(test["features"].numpy()) == test["targets"].numpy()).mean()))
        histories[name], bands[name] = over_seeds(runs)
        finals[name] = {"mlp": mean_std(mlp), **({"logreg": mean_std(logreg)} if logreg else {}),
                        "rows": [len(train["targets"]), len(test["targets"])], "features": x_train.shape[1]}
        for h in histories[name]:
            ctx.log(f"{name}.test_accuracy", h["test_accuracy"], h["epoch"])

    first = p["tables"][0]
    ctx.metrics.update(
        test_accuracy=finals[first]["mlp"][0], statistics_max_abs_error=leak,
        tables={name: {"mlp_accuracy_mean": f["mlp"][0], "mlp_accuracy_std": f["mlp"][1], "train_rows": f["rows"][0],
                       "test_rows": f["rows"][1], "features": f["features"],
                       **({"logreg_accuracy_mean": f["logreg"][0], "logreg_accuracy_std": f["logreg"][1],
                           "mlp_minus_logreg": f["mlp"][0] - f["logreg"][0]} if "logreg" in f else {})}
                for name, f in finals.items()},
        splits=p["splits"], epochs=p["epochs"], hidden=p["hidden"])
    plot_histories(ctx, {f"{name} MLP": h for name, h in histories.items()},
                   f"b03-07: MLP {p['hidden']}, ±std of {p['splits']} splits",
                   errors={f"{name} MLP": band for name, band in bands.items()})
    if p["baseline"]:
        plot_final(ctx, finals, p)
        ctx.bench["fit_s"] = {name: s | {"ratio": s["mlp"] / s["logreg"]} for name, s in seconds.items()}
        ctx.bench["predict"] = compare(lambda: model(x_test), lambda: baseline.predict_proba(test["features"].numpy()),
                                       min_run_time=p["bench_seconds"])
        ctx.bench["ratio"] = ctx.bench["predict"]["ratio"]
    else:
        ctx.bench["fit_s"] = seconds


def plot_final(ctx: RunContext, finals: dict, p: dict) -> None:
    fig = ctx.figure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    for i, (label, key) in enumerate([("MLP (yours)", "mlp"), ("logistic regression (scikit-learn)", "logreg")]):
        means, stds = zip(*(finals[name][key] for name in finals))
        ax.bar([j + 0.38 * i for j in range(len(finals))], means, width=0.36, yerr=stds, capsize=4, label=label,
               color=f"C{i}")
    ax.set_xticks([j + 0.19 for j in range(len(finals))], [name.replace("_", " ") for name in finals])
    ax.set(ylim=(0.85, 1.005), ylabel="test accuracy",
           title=f"b03-07: mean ± std over {p['splits']} splits ({TEST_FRACTION:.0%} test)")
    ax.legend(fontsize=7, loc="lower right")
    ctx.save_figure(fig, "final_accuracy")
