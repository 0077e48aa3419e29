"""`torchkata doctor`: does this machine compute what the committed results were computed with, bit for bit?

A small fixed probe of every op family that the catalog's experiments use runs under the same settings as a run
(the pinned code paths of `numerics`, `seed_everything`, 1 and 2 threads: the smoke and default scales). Each
family's outputs, gradients included, are hashed and compared with the fingerprints committed in
`proof/fingerprints.json`, which hold, per torch build, the hashes and the CPU models that produced them. A
family that differs here will make the results that use it differ from dvc.lock.

    python -m torchkata.pipeline.doctor [--record] [--json FILE]

It runs in a process of its own (`torchkata doctor` starts one): the code paths are pinned through the
environment, which torch reads once, when it loads. `--record` adds this machine to the fingerprints when it
agrees with them, or writes them for a torch build that has none yet. A new op family that an exercise uses
gets a probe here, and the fingerprints are recorded again.
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import platform
import sys
import time
from pathlib import Path

from torchkata.pipeline.numerics import cpu_code_path, pin_cpu_code_paths

FINGERPRINTS = Path(__file__).resolve().parents[3] / "proof" / "fingerprints.json"
THREADS = (1, 2)

# ATen ops that MKL's VML computes on CPU (aten/src/ATen/cpu/vml.h); the doctor probes some of them
VML_OPS = frozenset(f"aten.{name}" for name in (
    "acos", "asin", "atan", "cos", "erf", "erfc", "erfinv", "exp", "expm1", "log", "log10", "log1p", "log2",
    "sin", "tan", "tanh", "trunc", "sqrt", "_foreach_sqrt", "_foreach_exp", "_foreach_log"))
# seen to differ between CPU models (the doctor's VARIES probes); the experiments use numerics.sqrt instead
VARYING_OPS = frozenset({"aten.sqrt", "aten._foreach_sqrt"})


def _probe_source_hash() -> str:
    """Fingerprints recorded with other probes cannot be compared: the probes' own source is part of the key."""
    source = "".join(inspect.getsource(f) for f in (*PROBES.values(), *VARIES.values(), _train_three_steps))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def matmul(torch, g):
    a, b = torch.randn(67, 129, generator=g), torch.randn(129, 93, generator=g)
    bias, batch = torch.randn(93, generator=g), torch.randn(5, 33, 47, generator=g)
    return [a @ b, torch.addmm(bias, a, b), torch.bmm(batch, torch.randn(5, 47, 21, generator=g)),
            a.double() @ b.double(), torch.nn.functional.linear(a, b.t(), bias)]


def conv_pool(torch, g):
    F = torch.nn.functional
    x = torch.randn(4, 3, 28, 28, generator=g, requires_grad=True)
    w = torch.randn(8, 3, 3, 3, generator=g, requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    y = F.max_pool2d(F.relu(y), 2) + F.avg_pool2d(y, 2) + F.adaptive_avg_pool2d(y, 14)
    z = F.conv2d(y, torch.randn(8, 2, 3, 3, generator=g), stride=2, groups=4)
    z.square().sum().backward()
    return [y, z, x.grad, w.grad]


def activations_losses(torch, g):
    F = torch.nn.functional
    x = torch.randn(64, 300, generator=g, requires_grad=True)
    target = torch.randint(0, 300, (64,), generator=g)
    outs = [F.relu(x), F.gelu(x), torch.tanh(x), torch.sigmoid(x), F.silu(x), x.exp(), x.abs().log1p(), x.sin(),
            F.softplus(x), F.log_softmax(x, -1), torch.softmax(x, -1)]
    loss = F.cross_entropy(x, target) + F.mse_loss(torch.sigmoid(x), torch.rand(64, 300, generator=g))
    loss.backward()
    return outs + [loss, x.grad]


def normalization(torch, g):
    F = torch.nn.functional
    x = torch.randn(16, 24, 7, 7, generator=g, requires_grad=True)
    weight, bias = torch.randn(24, generator=g), torch.randn(24, generator=g)
    mean, var = torch.zeros(24), torch.ones(24)
    bn = F.batch_norm(x, mean, var, weight, bias, training=True, momentum=0.1)
    ln = F.layer_norm(x, (7, 7))
    (bn.square().mean() + ln.abs().mean()).backward()
    return [bn, ln, mean, var, x.grad]


def random_ops(torch, g):
    # the global generator, as nn.Dropout and most experiments draw: which stream each op draws from is the point
    return [torch.nn.functional.dropout(torch.ones(4096), 0.3, training=True), torch.bernoulli(torch.full((4096,), 0.3)), torch.empty(4096).bernoulli_(0.3),
            torch.randperm(1000), torch.randint(0, 100, (4096,)), torch.randn(4096), torch.rand(4096),
            torch.empty(4096).normal_(2.0, 3.0), torch.empty(4096).uniform_(-1, 1),
            torch.multinomial(torch.rand(10), 50, replacement=True)]


def embedding_rnn_attention(torch, g):
    nn, F = torch.nn, torch.nn.functional
    emb = nn.Embedding(50, 16)
    tokens = torch.randint(0, 50, (4, 12), generator=g)
    x = emb(tokens)
    lstm, gru, rnn = nn.LSTM(16, 24, batch_first=True), nn.GRU(16, 24, batch_first=True), nn.RNN(16, 24)
    h_lstm, _ = lstm(x)
    h_gru, _ = gru(x)
    h_rnn, _ = rnn(x.transpose(0, 1))
    q = k = v = h_lstm.view(4, 12, 2, 12).transpose(1, 2)
    att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    (att.square().sum() + h_gru.sum() + h_rnn.mean()).backward()
    return [x, h_lstm, h_gru, h_rnn, att, emb.weight.grad, lstm.weight_hh_l0.grad]


def optimizers(torch, g):
    """The optimizers as the experiments build them: Adam and AdamW fused (the foreach versions take sqrt from MKL's
    vector library, see VARIES), SGD with momentum, gradient clipping."""
    results = []
    for make in (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
                 lambda p: torch.optim.Adam(p, lr=1e-3, fused=True),
                 lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01, fused=True)):
        results += _train_three_steps(torch, g, make)
    return results


def _train_three_steps(torch, g, make_optimizer):
    model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU(), torch.nn.Linear(32, 5))
    opt = make_optimizer(model.parameters())
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(16, 20, generator=g)).square().mean().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def portable_sqrt(torch, g):
    """sqrt through float64 and back: correctly rounded in float32, so the same on every CPU (numerics.sqrt)."""
    from torchkata.pipeline.numerics import sqrt

    x = torch.rand(5000, generator=g) + 0.1
    return [sqrt(x), sqrt(x.view(50, 100).t())]


def vml_sqrt(torch, g):
    """torch.sqrt on CPU: MKL's vector sqrt, 1 ulp from the exact result in places, not the same places on an AMD
    EPYC and an Intel Xeon."""
    x = torch.rand(5000, generator=g) + 0.1
    return [x.sqrt(), x.double().sqrt(), torch._foreach_sqrt([x])[0], x.pow(0.5)]


def foreach_optimizers(torch, g):
    """Adam, AdamW and RMSprop as torch builds them by default (foreach): their sqrt is vml_sqrt's."""
    results = []
    for make in (lambda p: torch.optim.Adam(p, lr=1e-3), lambda p: torch.optim.AdamW(p, lr=1e-3),
                 lambda p: torch.optim.RMSprop(p, lr=1e-3, centered=True)):
        results += _train_three_steps(torch, g, make)
    return results


def reductions(torch, g):
    x = torch.randn(1000, 517, generator=g)
    return [x.sum(), x.sum(0), x.sum(1), x.mean(), x.var(0), x.std(1), x.norm(), x.norm(dim=0), x.cumsum(1),
            x.amax(1), x.logsumexp(1), x.double().sum(), x.prod(1), torch.linalg.vector_norm(x, 3, dim=1)]


# compared with the committed fingerprints: the experiments rely on these being the same on every CPU model
PROBES = {f.__name__: f for f in (matmul, conv_pool, activations_losses, normalization, random_ops,
                                  embedding_rnn_attention, optimizers, reductions, portable_sqrt)}
# seen to differ between CPU models under the same pins: recorded per model and reported, never relied on; the
# experiments avoid them (fused Adam, numerics.sqrt), and an exercise that cannot is bitwise on one model only
VARIES = {f.__name__: f for f in (vml_sqrt, foreach_optimizers)}


def _hash(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def fingerprint(probes: dict) -> tuple[dict, dict, list[str]]:
    """{family: {"threads-N": hash}} of this machine under a run's settings, each output's own hash (to find the
    op that differs), and the ATen ops the probes call (what a run may call and still be portable)."""
    import torch

    from torchkata.pipeline.numerics import op_trace
    from torchkata.pipeline.seeding import seed_everything

    found, outputs, trace = {}, {}, op_trace()
    for name, probe in probes.items():
        for threads in THREADS:
            generator = seed_everything(0, threads)
            with trace:
                results = probe(torch, generator)
            found.setdefault(name, {})[f"threads-{threads}"] = _hash(results)
            outputs.setdefault(name, {})[f"threads-{threads}"] = [_hash([t]) for t in results]
    return found, outputs, sorted(trace.ops)


def cpu_info() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    try:
        block = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return {}
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in block.splitlines() if ":" in line)}


def machine() -> dict:
    import numpy
    import torch

    info = cpu_info()
    # 'AMD EPYC 7B13 (family 25, model 1)': the name alone can be as vague as 'AMD EPYC'
    cpu = (f"{info['model name']} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"
           if "model name" in info else platform.processor() or platform.machine())
    return {"cpu": cpu, "isa": sorted(f for f in info.get("flags", "").split() if f.startswith(("avx", "fma", "amx"))),
            "torch": torch.__version__, "numpy": numpy.__version__, "python": platform.python_version(),
            "code_path": cpu_code_path(), "mkl": torch.backends.mkl.is_available(),
            "blas": torch.__config__.show().split("BLAS_INFO=")[-1].split(",")[0]}


def compare(found: dict, known: dict) -> dict:
    """{family: "agrees" | "differs" | "new"} of this machine's fingerprint against the committed one."""
    return {family: ("new" if family not in known else "agrees" if hashes == known[family] else "differs")
            for family, hashes in found.items()}


def cross_cpu(ops: list[str], torch_version: str, fingerprints: Path) -> dict:
    """Whether a run with these ops computes the same bytes on the CPU models the fingerprints agree on."""
    store = json.loads(fingerprints.read_text()) if fingerprints.is_file() else {}
    build = store.get("builds", {}).get(torch_version, {})
    models = [m["cpu"] for m in build.get("machines", [])]
    probed = set(store.get("probed_ops", ()))
    varying = sorted(set(ops) & VARYING_OPS)
    unprobed = sorted((set(ops) & VML_OPS) - probed - VARYING_OPS)
    if varying:
        verdict, why = "same CPU model only", f"calls {', '.join(varying)} (MKL's vector math; use numerics.sqrt)"
    elif unprobed:
        verdict, why = "not probed", f"calls {', '.join(unprobed)}, which `torchkata doctor` does not probe yet"
    elif len(models) < 2:
        tried = {v: [m["cpu"] for m in b["machines"]] for v, b in store.get("builds", {}).items()
                 if len(b["machines"]) > 1}
        verdict = "not tried with this torch"
        why = f"torch {torch_version} has been fingerprinted on {len(models)} CPU model(s)" + "".join(
            f"; under torch {v} its probes agree on {'; '.join(cpus)}" for v, cpus in tried.items())
    else:
        verdict, why = "across CPU models", f"its ops agree on {'; '.join(models)} (torch {torch_version})"
    return {"verdict": verdict, "why": why, "models": models, "torch": torch_version}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="torchkata doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true",
                        help="add this machine to the fingerprints (where it agrees, or where there are none yet)")
    parser.add_argument("--json", type=Path, help="also write this machine's report to FILE")
    parser.add_argument("--fingerprints", type=Path, default=FINGERPRINTS)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    found, outputs, ops = fingerprint(PROBES)
    varied, _, _ = fingerprint(VARIES)
    here, probes = machine(), _probe_source_hash()
    store = json.loads(args.fingerprints.read_text()) if args.fingerprints.is_file() else {}
    if store.get("probes") != probes:  # recorded with other probes: nothing of it compares
        store = {"probes": probes, "probed_ops": ops, "builds": {}}
    print(f"cpu      {here['cpu']}\nisa      {' '.join(here['isa'])}\ncode     {here['code_path']}\n"
          f"versions torch {here['torch']}, numpy {here['numpy']}, python {here['python']}, BLAS {here['blas']}")
    # per torch build: another torch version may compute an op otherwise on the same machine
    known = store["builds"].get(here["torch"])
    fresh = known is None
    if fresh:
        print(f"{args.fingerprints} holds no fingerprints of torch {here['torch']} with these probes ({probes}): "
              + ("recording this machine's" if args.record else "nothing to compare; record them with --record"))
        known = store["builds"][here["torch"]] = {"families": found, "machines": [], "varies_by_cpu": {}}
    verdict = compare(found, known["families"])
    print(f"op families the experiments rely on, against torch {here['torch']} on "
          + ("; ".join(m["cpu"] for m in known["machines"]) or "this machine") + ":")
    for family, state in verdict.items():
        detail = "" if state == "agrees" else f"   here {found[family]}, committed {known['families'].get(family)}"
        print(f"  {family:<26} {state}{detail}")
    print("op families known to vary by CPU model (the experiments avoid them):")
    for family, hashes in varied.items():
        same = [cpu for cpu, recorded in known["varies_by_cpu"].items() if recorded.get(family) == hashes]
        print(f"  {family:<26} " + (f"as on {', '.join(same)}" if same else "unlike every model recorded"))
    differs = sorted(f for f, state in verdict.items() if state != "agrees")
    if args.record and not differs:
        known["machines"] = [m for m in known["machines"] if m["cpu"] != here["cpu"]] + [here]
        known["varies_by_cpu"][here["cpu"]] = varied
        args.fingerprints.write_text(json.dumps(store, indent=1, sort_keys=True) + "\n")
        print(f"recorded {here['cpu']} in {args.fingerprints}")
    elif args.record:
        print(f"not recorded: {', '.join(differs)} differ from the committed fingerprints")
    seconds = round(time.perf_counter() - start, 2)
    if args.json:
        args.json.write_text(json.dumps({"machine": here, "probes": probes, "fingerprint": found, "outputs": outputs,
                                         "verdict": verdict, "varies": varied, "seconds": seconds}, indent=1) + "\n")
    print(f"{len(found) - len(differs)}/{len(found)} op families agree ({seconds} s)")
    return 1 if differs or (fresh and not args.record) else 0


if __name__ == "__main__":
    pin_cpu_code_paths()
    sys.exit(main())
