"""a19: Mixup and CutMix. The mixed batch and its label probabilities are checked exactly against the λ, the
permutation and the box replayed from the same seeded generator; CutMix's label weight is the area of the box as
clipped (not the λ drawn); λ's Beta(α, α) moments and the box's placement (how often each row and column is cut)
against their distributions; shapes, dtypes, errors; the soft cross-entropy against F.cross_entropy."""
import ast
import inspect
import math
import textwrap

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from grading import failing_checks

EXERCISE = "a19"


@pytest.fixture(scope="module")
def mix(impl_for):
    return impl_for(EXERCISE)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def distinct_images(n, c, h, w, dtype=torch.float32):
    """Every pixel of every image differs from every other image's: where the output changed shows the box."""
    return (torch.arange(n * c * h * w, dtype=torch.float64).reshape(n, c, h, w) / (n * c * h * w)).to(dtype)


def expected_targets(labels, perm, lam, classes, dtype):
    one_hot = F.one_hot(labels, classes).to(torch.float64)
    return (lam * one_hot + (1 - lam) * one_hot[perm]).to(dtype)


def check_lambda_is_beta(mix):
    for alpha in (0.4, 2.0):
        g = gen(0)
        lams = torch.tensor([mix.sample_lambda(alpha, g) for _ in range(1500)], dtype=torch.float64)
        assert ((lams > 0) & (lams < 1)).all()
        assert abs(lams.mean() - 0.5) < 0.04, (alpha, lams.mean())
        assert abs(lams.var() - 1 / (4 * (2 * alpha + 1))) < 0.02, (alpha, lams.var())  # Beta(α, α)'s variance
        assert abs((lams < 0.25).double().mean() - (0.366 if alpha == 0.4 else 0.156)) < 0.045, alpha  # its CDF
    assert mix.sample_lambda(1.0, gen(5)) == mix.sample_lambda(1.0, gen(5))
    x, y = distinct_images(5, 1, 32, 32), torch.arange(5) % 3  # 32 x 32: boxes of nearby λ differ in size
    for fn in (mix.mixup, mix.cutmix):  # α defaults to 1
        for seed in range(4):
            default, one = fn(x, y, 3, generator=gen(seed)), fn(x, y, 3, 1.0, gen(seed))
            assert default.lam == one.lam and torch.equal(default.inputs, one.inputs)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            mix.sample_lambda(bad, gen(0))


def check_mixup_exact(mix):
    for shape, dtype, alpha in [((6, 3, 4, 5), torch.float32, 0.5), ((7, 11), torch.float64, 1.0),
                                ((5, 2, 3), torch.float64, 3.0)]:
        for seed in range(3):
            x = torch.randn(shape, dtype=dtype, generator=gen(100 + seed))
            y = torch.randint(4, shape[:1], generator=gen(200 + seed))
            before = x.clone()
            out = mix.mixup(x, y, 4, alpha, gen(seed))
            g = gen(seed)  # replay: λ, then the permutation
            lam = mix.sample_lambda(alpha, g)
            perm = torch.randperm(shape[0], generator=g)
            assert out.lam == lam and torch.equal(out.perm, perm) and out.box is None
            assert out.inputs.shape == x.shape and out.inputs.dtype == dtype and torch.equal(x, before)
            torch.testing.assert_close(out.inputs, lam * x + (1 - lam) * x[perm])
            assert out.targets.shape == (shape[0], 4) and out.targets.dtype == dtype
            torch.testing.assert_close(out.targets, expected_targets(y, perm, lam, 4, dtype), rtol=1e-12, atol=1e-7)
            torch.testing.assert_close(out.targets.sum(1), torch.ones(shape[0], dtype=dtype))


def check_cutmix_exact(mix):
    @settings(max_examples=25, deadline=None, derandomize=True)
    @given(n=st.integers(1, 5), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
           alpha=st.sampled_from([0.3, 1.0, 4.0]), seed=st.integers(0, 10_000))
    def case(n, c, h, w, alpha, seed):
        x, y = distinct_images(n, c, h, w, torch.float64), torch.randint(3, (n,), generator=gen(seed))
        before = x.clone()
        out = mix.cutmix(x, y, 3, alpha, gen(seed))
        g = gen(seed)  # replay: λ, the permutation, then the box
        drawn = mix.sample_lambda(alpha, g)
        perm = torch.randperm(n, generator=g)
        top, left, bottom, right = mix.rand_box(h, w, drawn, g)
        assert out.box == (top, left, bottom, right) and torch.equal(out.perm, perm) and torch.equal(x, before)
        inside = torch.zeros(h, w, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        torch.testing.assert_close(out.inputs, torch.where(inside, x[perm], x), rtol=0, atol=0)
        changed = (out.inputs != x).any(dim=1)  # [n, h, w]: exactly the box, in every row with another partner
        assert torch.equal(changed, inside & (perm != torch.arange(n))[:, None, None])
        assert out.lam == pytest.approx(1 - inside.sum().item() / (h * w), rel=1e-12, abs=1e-12)
        torch.testing.assert_close(out.targets, expected_targets(y, perm, out.lam, 3, torch.float64))
        assert out.inputs.dtype == out.targets.dtype == torch.float64

    case()


def check_cutmix_weights_labels_by_the_clipped_box(mix):
    x, y = distinct_images(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    clipped = 0
    for seed in range(40):
        out = mix.cutmix(x, y, 4, 1.0, gen(seed))
        drawn = mix.sample_lambda(1.0, gen(seed))
        top, left, bottom, right = out.box
        side_h, side_w = int(8 * math.sqrt(1 - drawn)), int(8 * math.sqrt(1 - drawn))
        assert bottom - top <= side_h and right - left <= side_w
        if 0 < top and bottom < 8:
            assert bottom - top == side_h
        if 0 < left and right < 8:
            assert right - left == side_w
        area = (bottom - top) * (right - left)
        assert out.lam == pytest.approx(1 - area / 64, abs=1e-12)
        if (bottom - top) * (right - left) < side_h * side_w:
            clipped += 1
            assert out.lam > drawn  # less was pasted than drawn: the own label weighs more
        own = out.targets[torch.arange(4), y]
        torch.testing.assert_close(own, torch.full((4,), out.lam).where(out.perm != torch.arange(4), 1.0))
    assert clipped >= 5


def coverage(h, w, lam, side_h, side_w):
    """How often each row and each column is cut: the centre uniform, the box from centre - side // 2, clipped."""
    def along(size, side):
        return torch.tensor([sum(c - side // 2 <= i < c - side // 2 + side for c in range(size)) / size
                             for i in range(size)], dtype=torch.float64)
    return along(h, side_h), along(w, side_w)


def check_box_placement(mix):
    for h, w, lam in [(10, 7, 0.75), (6, 9, 0.36), (5, 5, 0.0)]:
        g, rows, cols = gen(0), torch.zeros(h, dtype=torch.float64), torch.zeros(w, dtype=torch.float64)
        side_h, side_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        for _ in range(1500):
            top, left, bottom, right = mix.rand_box(h, w, lam, g)
            assert 0 <= top <= bottom <= h and 0 <= left <= right <= w
            assert bottom - top <= side_h and right - left <= side_w
            rows[top:bottom] += 1
            cols[left:right] += 1
        want_rows, want_cols = coverage(h, w, lam, side_h, side_w)
        torch.testing.assert_close(rows / 1500, want_rows, atol=0.05, rtol=0)
        torch.testing.assert_close(cols / 1500, want_cols, atol=0.05, rtol=0)
    assert mix.rand_box(6, 4, 1.0, gen(0))[2:] == mix.rand_box(6, 4, 1.0, gen(0))[:2]  # λ = 1: an empty box
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="lam"):
            mix.rand_box(6, 4, bad, gen(0))


def check_seeded_generator_only(mix):
    x, y = distinct_images(6, 2, 5, 5), torch.arange(6) % 3
    for fn in (mix.mixup, mix.cutmix):
        a, b = fn(x, y, 3, 1.0, gen(7)), fn(x, y, 3, 1.0, gen(7))
        assert a.lam == b.lam and torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
        g = gen(7)
        first, second = fn(x, y, 3, 1.0, g), fn(x, y, 3, 1.0, g)
        assert first.lam != second.lam  # the generator moved on
        torch.manual_seed(0)
        want = torch.rand(3)
        torch.manual_seed(0)
        fn(x, y, 3, 1.0, gen(1))
        assert torch.equal(torch.rand(3), want)  # the global generator was not touched


def check_dtypes_and_edges(mix):
    y = torch.tensor([0, 2, 1])
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        x = distinct_images(3, 1, 4, 4, dtype)
        for fn in (mix.mixup, mix.cutmix):
            out = fn(x, y, 3, 1.0, gen(0))
            assert out.inputs.dtype == out.targets.dtype == dtype and out.targets.shape == (3, 3)
    one = mix.cutmix(distinct_images(1, 1, 4, 4), torch.tensor([2]), 3, 1.0, gen(0))  # its own partner
    assert torch.equal(one.inputs, distinct_images(1, 1, 4, 4)) and torch.equal(one.targets, torch.tensor([[0., 0, 1]]))
    empty = mix.mixup(torch.empty(0, 5), torch.empty(0, dtype=torch.long), 3, 1.0, gen(0))
    assert empty.inputs.shape == (0, 5) and empty.targets.shape == (0, 3)
    empty = mix.cutmix(torch.empty(0, 1, 4, 4), torch.empty(0, dtype=torch.long), 3, 1.0, gen(0))
    assert empty.inputs.shape == (0, 1, 4, 4) and empty.targets.shape == (0, 3)
    x = distinct_images(4, 3, 6, 6).permute(0, 1, 3, 2)  # non-contiguous
    out = mix.cutmix(x, torch.arange(4), 4, 1.0, gen(3))
    top, left, bottom, right = out.box
    torch.testing.assert_close(out.inputs[:, :, top:bottom, left:right], x[out.perm, :, top:bottom, left:right])


def check_errors(mix):
    x, y = torch.randn(4, 1, 3, 3), torch.tensor([0, 1, 2, 1])
    for fn in (mix.mixup, mix.cutmix):
        with pytest.raises(TypeError, match="floating"):
            fn(x.to(torch.uint8), y, 3, 1.0, gen(0))
        for bad in (y[:3], y.float(), y[:, None].expand(4, 2)):
            with pytest.raises(ValueError, match="labels"):
                fn(x, bad, 3, 1.0, gen(0))
        for bad in (torch.tensor([0, 1, 3, 1]), torch.tensor([0, 5, 2, 1]), torch.tensor([0, -1, 2, 1])):
            with pytest.raises(ValueError, match="classes=3"):
                fn(x, bad, 3, 1.0, gen(0))
        with pytest.raises(ValueError, match="alpha"):
            fn(x, y, 3, 0.0, gen(0))
        assert fn(x, torch.tensor([0, 1, 2, 2]), 3, 1.0, gen(0)).targets.shape == (4, 3)  # the top class is fine
    for bad in (x[:, 0], x[:, :, None]):  # 3-D and 5-D
        with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
            mix.cutmix(bad, y, 3, 1.0, gen(0))


def check_soft_cross_entropy(mix):
    g = gen(0)
    for dtype in (torch.float32, torch.float64):
        logits = torch.randn(8, 5, dtype=dtype, generator=g) * 3
        probs = torch.rand(8, 5, dtype=dtype, generator=g).softmax(1)
        y = torch.randint(5, (8,), generator=g)
        for targets in (probs, y):
            a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
            ours, want = mix.soft_cross_entropy(a, targets), F.cross_entropy(b, targets)
            assert ours.shape == () and ours.dtype == dtype
            torch.testing.assert_close(ours, want)
            ours.backward(), want.backward()
            torch.testing.assert_close(a.grad, b.grad)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    out = mix.mixup(x, y, 4, 1.0, gen(0))
    logits = torch.randn(6, 4)
    torch.testing.assert_close(mix.soft_cross_entropy(logits, out.targets),  # = λ CE(y) + (1 - λ) CE(y[perm])
                               out.lam * F.cross_entropy(logits, y) + (1 - out.lam) * F.cross_entropy(logits, y[out.perm]))
    big = torch.tensor([[1e4, 0.0, -1e4]])
    torch.testing.assert_close(mix.soft_cross_entropy(big, torch.tensor([[0.5, 0.5, 0.0]])),
                               F.cross_entropy(big, torch.tensor([[0.5, 0.5, 0.0]])))
    z = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: mix.soft_cross_entropy(t, probs[:3, :4].double().softmax(1)), (z,))


def check_no_builtin_cross_entropy(mix):
    """soft_cross_entropy calls no cross-entropy or NLL loss of torch's (its docstring may name them)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(mix.soft_cross_entropy)))
    called = {getattr(node.func, "attr", getattr(node.func, "id", "")) for node in ast.walk(tree)
              if isinstance(node, ast.Call)}
    assert not called & {"cross_entropy", "nll_loss", "CrossEntropyLoss", "NLLLoss"}, called


CHECKS = [check_no_builtin_cross_entropy, check_lambda_is_beta, check_mixup_exact, check_cutmix_exact, check_cutmix_weights_labels_by_the_clipped_box,
          check_box_placement, check_seeded_generator_only, check_dtypes_and_edges, check_errors,
          check_soft_cross_entropy]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_mixing(mix, check):
    check(mix)


def broken_variants():
    import types

    from torchkata.data import mixup as ref

    def variant(**overrides):
        return types.SimpleNamespace(**{**vars(ref), **overrides})

    def drawn_lambda(inputs, labels, classes, alpha=1.0, generator=None):
        replay = torch.Generator()
        replay.set_state(generator.get_state())
        out = ref.cutmix(inputs, labels, classes, alpha, generator)
        lam = ref.sample_lambda(alpha, replay)
        return out._replace(lam=lam, targets=ref.mix_targets(labels, out.perm, lam, classes, inputs.dtype))

    def uniform_lambda(alpha, generator=None):
        if not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        return float(torch.rand((), generator=generator, dtype=torch.float64))

    def global_perm_mixup(inputs, labels, classes, alpha=1.0, generator=None):
        lam = ref.sample_lambda(alpha, generator)
        perm = torch.randperm(len(inputs))  # the global generator: not repeatable from the seed
        return ref.Mixed(lam * inputs + (1 - lam) * inputs[perm], ref.mix_targets(labels, perm, lam, classes,
                                                                                  inputs.dtype), lam, perm)

    def corner_box(height, width, lam, generator=None):  # the box from its centre, not around it
        top, left, bottom, right = ref.rand_box(height, width, lam, generator)
        side_h, side_w = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))
        centre_h, centre_w = top + side_h // 2, left + side_w // 2
        return centre_h, centre_w, min(centre_h + side_h, height), min(centre_w + side_w, width)

    def swapped_weights_mixup(inputs, labels, classes, alpha=1.0, generator=None):
        out = ref.mixup(inputs, labels, classes, alpha, generator)
        return out._replace(targets=ref.mix_targets(labels, out.perm, 1 - out.lam, classes, inputs.dtype))

    def no_log_softmax(logits, targets):
        if not targets.is_floating_point():
            targets = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
        return -(targets * logits.softmax(1).log()).sum(1).mean()

    def builtin_loss(logits, targets):
        return F.cross_entropy(logits, targets)

    return {  # name: (variant, the check that must reject it)
        "cutmix_labels_by_drawn_lambda": (variant(cutmix=drawn_lambda), "check_cutmix_weights_labels_by_the_clipped_box"),
        "uniform_lambda": (variant(sample_lambda=uniform_lambda), "check_lambda_is_beta"),
        "global_generator": (variant(mixup=global_perm_mixup), "check_seeded_generator_only"),
        "box_off_centre": (variant(rand_box=corner_box), "check_box_placement"),
        "swapped_label_weights": (variant(mixup=swapped_weights_mixup), "check_mixup_exact"),
        "softmax_then_log": (variant(soft_cross_entropy=no_log_softmax), "check_soft_cross_entropy"),
        "builtin_cross_entropy": (variant(soft_cross_entropy=builtin_loss), "check_no_builtin_cross_entropy"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", list(broken_variants()))
def test_broken_mixing_is_rejected(name):
    broken, rejected_by = broken_variants()[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], broken) == [rejected_by]
