"""What the learning-rate schedule graders share (b03-09's schedules, a15's polynomial one, which subclasses them):
an optimizer with two parameter groups, the trajectory of its hyper-parameters under a schedule, a state after a
save and a safe load, and the check that a reference computes its values without torch's schedulers."""
import inspect
import io
import warnings

import torch

STEPS = 1000


def optimizer(kind: str = "sgd") -> torch.optim.Optimizer:
    """Two groups with their own learning rates (and momentum for SGD, betas for Adam)."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))]},
              {"params": [torch.nn.Parameter(torch.zeros(3))], "lr": 0.03}]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=0.1, betas=(0.9, 0.99))
    return torch.optim.SGD(groups, lr=0.1, momentum=0.9)


def hyper(opt: torch.optim.Optimizer) -> list[float]:
    """What a schedule may set in each group: lr and momentum (beta1 and beta2 for Adam)."""
    return [value for group in opt.param_groups
            for value in (group["lr"], *(group["betas"] if "betas" in group else (group["momentum"],)))]


def trajectory(make, kind: str = "sgd", steps: int = STEPS) -> torch.Tensor:
    """[steps, values]: the groups' lr and momentum at each step of a schedule made by make(optimizer)."""
    opt = optimizer(kind)
    schedule, rows = make(opt), []
    with warnings.catch_warnings():  # torch's schedulers want an optimizer step first: there are no gradients
        warnings.filterwarnings("ignore", message="Detected call of")
        for _ in range(steps):
            assert schedule.get_last_lr() == [group["lr"] for group in opt.param_groups]
            rows.append(hyper(opt))
            schedule.step()  # no optimizer step in between: it would cost 0.1 ms a step
    return torch.tensor(rows, dtype=torch.float64)


TORCH_TRAJECTORIES = {}


def torch_trajectory(key, make, kind: str = "sgd", steps: int = STEPS) -> torch.Tensor:
    """trajectory(make, kind, steps) of torch's schedule, computed once per test process under `key` (mutation
    testing grades many implementations in one process)."""
    if key not in TORCH_TRAJECTORIES:
        TORCH_TRAJECTORIES[key] = trajectory(make, kind, steps)
    return TORCH_TRAJECTORIES[key]


def saved(state: dict) -> dict:
    """The state after torch.save and a safe torch.load: plain numbers, lists and strings only."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def assert_no_torch_schedulers(module) -> None:
    source = inspect.getsource(module)
    assert "lr_scheduler." not in source and "import lr_scheduler" not in source
