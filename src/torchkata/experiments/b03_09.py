"""b03-09 experiment: the hand-written schedules beside torch.optim.lr_scheduler's for 1,000 steps (the largest
relative difference of any lr or momentum, and a state_dict restart in the middle), their curves, and what each does
to a short training: an MLP on scikit-learn's digits with SGD (momentum 0.9) at a constant lr, stepped down, cosine
annealed, warmed up, and on a one-cycle schedule (per batch, through fit's before_step), over a few seeds."""
from __future__ import annotations

import io
import re
import warnings

import torch
from torch.optim import lr_scheduler

from torchkata.data import digits
from torchkata.pipeline.bench import compare
from torchkata.pipeline.runner import RunContext
from torchkata.training.loop import fit, mean_std, over_seeds, plot_histories
from torchkata.training.models import mlp

SCALES = {
    "smoke": {"steps": 200, "test_size": 300, "train_size": 200, "hidden": 32, "epochs": 1, "seeds": 1,
              "batch_size": 32, "lr": 0.1, "bench_seconds": 0.02},
    "default": {"steps": 1000, "test_size": 400, "train_size": 1000, "hidden": 128, "epochs": 12, "seeds": 3,
                "batch_size": 32, "lr": 0.1, "bench_seconds": 0.3},
    "full": {"steps": 1000, "test_size": 400, "train_size": None, "hidden": 256, "epochs": 30, "seeds": 10,
             "batch_size": 32, "lr": 0.1, "bench_seconds": 1.0},
}
MOMENTUM = 0.9


def agreement_cases(impl, steps: int) -> dict[str, tuple]:
    """label: (make ours, make torch's, optimizer kind) of the schedules compared with torch's and plotted."""
    cases = {"step (×0.5 every steps/8)": ("StepLR", "sgd", dict(step_size=steps // 8, gamma=0.5)),
             "cosine (T_max = steps)": ("CosineAnnealingLR", "sgd", dict(T_max=steps, eta_min=0.002)),
             "cosine (T_max = steps/3)": ("CosineAnnealingLR", "sgd", dict(T_max=steps // 3)),
             "linear warm-up": ("LinearLR", "sgd", dict(start_factor=0.05, total_iters=steps // 5)),
             "one-cycle (SGD momentum)": ("OneCycleLR", "sgd", dict(max_lr=0.1, total_steps=steps)),
             "one-cycle, 3 phases (Adam beta1)": ("OneCycleLR", "adam", dict(max_lr=0.1, total_steps=steps,
                                                                             three_phase=True))}
    return {label: (lambda opt, name=name, options=options: getattr(impl, name)(opt, **options),
                    lambda opt, name=name, options=options: getattr(lr_scheduler, name)(opt, **options), kind)
            for label, (name, kind, options) in cases.items()}


def new_optimizer(kind: str) -> torch.optim.Optimizer:
    params = [torch.nn.Parameter(torch.zeros(1))]
    return torch.optim.Adam(params, lr=0.1) if kind == "adam" else torch.optim.SGD(params, lr=0.1, momentum=MOMENTUM)


def momentum_of(opt: torch.optim.Optimizer) -> float:
    group = opt.param_groups[0]
    return group["betas"][0] if "betas" in group else group["momentum"]


def curve(make, kind: str, steps: int, restart_at: int | None = None) -> tuple[list[float], list[float]]:
    """(lr, momentum) at each step; with `restart_at`, the schedule and optimizer are rebuilt there from their
    state_dicts saved through torch.save, as a resumed run would."""
    opt = new_optimizer(kind)
    schedule, lrs, momenta = make(opt), [], []
    for step in range(steps):
        if step == restart_at:
            states = []
            for state in (schedule.state_dict(), opt.state_dict()):
                buffer = io.BytesIO()
                torch.save(state, buffer)
                states.append(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
            opt = new_optimizer(kind)
            schedule = make(opt)
            opt.load_state_dict(states[1])
            schedule.load_state_dict(states[0])
        lrs.append(opt.param_groups[0]["lr"])
        momenta.append(momentum_of(opt))
        schedule.step()
    return lrs, momenta


def slug(label: str) -> str:
    """A label as a metric name MLflow accepts: "one-cycle (per batch)" -> "one_cycle_per_batch"."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def relative_error(ours: list[float], want: list[float]) -> float:
    got, ref = torch.tensor(ours, dtype=torch.float64), torch.tensor(want, dtype=torch.float64)
    return float(((got - ref).abs() / ref.abs().clamp_min(1e-12)).max())


def agreement(ctx: RunContext, cases: dict[str, tuple]) -> dict[str, tuple[list[float], list[float]]]:
    """Each case's schedule beside torch's for ctx.params["steps"] steps, and resumed half-way from its state_dict:
    the largest relative differences go to metrics.json; returns each of ours's (lr, momentum) curve."""
    steps, curves, errors = ctx.params["steps"], {}, {}
    with warnings.catch_warnings():  # torch's schedulers are stepped without an optimizer step in between
        warnings.filterwarnings("ignore", message="Detected call of")
        for label, (make, make_torch, kind) in cases.items():
            ours, want = curve(make, kind, steps), curve(make_torch, kind, steps)
            resumed = curve(make, kind, steps, restart_at=steps // 2)
            errors[slug(label)] = {"lr": relative_error(ours[0], want[0]), "momentum": relative_error(ours[1], want[1]),
                             "resumed_lr": relative_error(resumed[0], want[0])}
            curves[label] = ours
    ctx.metrics.update(lr_max_rel_error=max(e["lr"] for e in errors.values()),
                       momentum_max_rel_error=max(e["momentum"] for e in errors.values()),
                       resumed_max_rel_error=max(e["resumed_lr"] for e in errors.values()),
                       agreement=errors, steps=steps)
    return curves


def bench_step(ctx: RunContext, ours, theirs) -> None:
    """One schedule step of ours against torch's, in this process."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected call of")
        ctx.bench["schedule_step"] = compare(ours.step, theirs.step, min_run_time=ctx.params["bench_seconds"])
    ctx.bench["ratio"] = ctx.bench["schedule_step"]["ratio"]


def run(ctx: RunContext) -> None:
    impl = ctx.impl
    curves = agreement(ctx, agreement_cases(impl, ctx.params["steps"]))
    plot_schedules(ctx, curves, *train(ctx), "b03-09")
    bench_step(ctx, impl.CosineAnnealingLR(new_optimizer("sgd"), T_max=100),
               lr_scheduler.CosineAnnealingLR(new_optimizer("sgd"), T_max=100))


def plot_schedules(ctx: RunContext, curves: dict, training_lrs: dict[str, list[float]], finals: dict,
                   exercise: str) -> None:
    """The schedules compared with torch's, one-cycle's momentum, and the lr each training ran at."""
    cycling = {label: momenta for label, (_, momenta) in curves.items() if len(set(momenta)) > 1}
    fig = ctx.figure(figsize=(14 if cycling else 10, 3.6))
    lr_ax, *momentum_ax, training_ax = fig.subplots(1, 3 if cycling else 2)
    for i, (label, (lrs, _)) in enumerate(curves.items()):
        lr_ax.plot(lrs, color=f"C{i}", label=label)
        if label in cycling:
            momentum_ax[0].plot(cycling[label], color=f"C{i}", label=label)
    for label, seen in training_lrs.items():
        mean, std = finals[label]["test_accuracy"]
        training_ax.plot(seen, label=f"{label}: {mean:.3f}±{std:.3f}")
    lr_ax.set(xlabel="step", ylabel="learning rate (base 0.1)", title=f"{exercise}: your schedules (equal to torch's)")
    for ax in momentum_ax:
        ax.set(xlabel="step", ylabel="momentum / beta1", title="one-cycle: momentum against the lr")
    training_ax.set(xlabel="optimizer step", ylabel="learning rate", title="the digits trainings (test accuracy)")
    for ax in (lr_ax, *momentum_ax, training_ax):
        ax.legend(fontsize=7)
    ctx.save_figure(fig, "schedules")


def training_schedules(impl, p: dict, steps_per_epoch: int) -> dict[str, tuple]:
    """label: (make(optimizer) -> schedule or None, stepped per "epoch" or per "step")."""
    epochs = p["epochs"]
    return {"constant": (lambda opt: None, "epoch"),
            "step (÷10 at 2/3)": (lambda opt: impl.StepLR(opt, step_size=max(1, 2 * epochs // 3), gamma=0.1), "epoch"),
            "cosine": (lambda opt: impl.CosineAnnealingLR(opt, T_max=epochs), "epoch"),
            "linear warm-up (1st epoch, per batch)": (lambda opt: impl.LinearLR(opt, start_factor=0.05,
                                                                               total_iters=steps_per_epoch), "step"),
            "one-cycle (per batch)": (lambda opt: impl.OneCycleLR(opt, max_lr=p["lr"],
                                                                   total_steps=epochs * steps_per_epoch), "step")}


def train(ctx: RunContext) -> tuple[dict[str, list[float]], dict]:
    return train_under(ctx, lambda steps_per_epoch: training_schedules(ctx.impl, ctx.params, steps_per_epoch),
                       "b03-09: digits MLP, SGD")


def train_under(ctx: RunContext, make_schedules, title: str) -> tuple[dict[str, list[float]], dict]:
    """The same MLP trained on the digits under each schedule of make_schedules(steps_per_epoch) (label: (make,
    "epoch" or "step")), over ctx.params["seeds"] seeds: the curves with their spread, the final figures in
    metrics["training"]; returns (the lr at each step of the last seed's run, {label: {key: (mean, std)}})."""
    p = ctx.params
    train_set, test_set = digits.split(ctx.input("digits"), p["test_size"], ctx.generator, p["train_size"])
    histories, bands, finals, lrs = {}, {}, {}, {}
    for label, (make, every) in make_schedules(-(-len(train_set[1]) // p["batch_size"])).items():
        runs = []
        for k in range(p["seeds"]):
            torch.manual_seed(ctx.seed * 1000 + k)  # the same initial weights for every schedule of seed k
            model = mlp(p["hidden"])
            opt = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=MOMENTUM)
            schedule, seen = make(opt), []

            def before_step(model, step, schedule=schedule, per_step=every == "step", opt=opt, seen=seen):
                if per_step and step > 0:
                    schedule.step()  # made at step 0; each later batch moves it on before the optimizer's step
                seen.append(opt.param_groups[0]["lr"])

            runs.append(fit(model, opt, train_set, test_set, p["epochs"], p["batch_size"],
                            torch.Generator().manual_seed(ctx.seed * 1000 + k),
                            scheduler=schedule if every == "epoch" else None, before_step=before_step))
            lrs[label] = seen
        histories[label], bands[label] = over_seeds(runs)
        finals[label] = {key: mean_std([run[-1][key] for run in runs]) for key in ("test_accuracy", "train_loss")}
    ctx.metrics["training"] = {slug(label): {f"{key}_{stat}": value for key, pair in final.items()
                                       for stat, value in zip(("mean", "std"), pair)} for label, final in finals.items()}
    ctx.metrics.update(train_size=len(train_set[1]), test_size=len(test_set[1]), epochs=p["epochs"], seeds=p["seeds"])
    plot_histories(ctx, histories, f"{title}, ±std of {p['seeds']} seeds", errors=bands)
    return lrs, finals
