"""b04-05: Grad-CAM. The maps equal a reference computed with plain autograd (torch.autograd.grad on the layer's
output, and a register_hook on a tensor), for the given or the predicted class, at any conv layer; hooks do not
outlive the call; the rank correlation is Spearman's; the cascading randomisation re-initialises from the top and
leaves the trained model alone."""
import re
import warnings
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from grading import failing_checks
from torchkata.vision.fashion_cnn import FashionCNN

EXERCISE = "b04-05"


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def small_model(seed=0):
    torch.manual_seed(seed)
    model = FashionCNN(channels=(4, 8), hidden=16).eval()
    with torch.no_grad():  # batch-norm statistics and shifts away from their initial values
        for name, t in model.state_dict().items():
            if t.is_floating_point() and "features" in name and "weight" not in name:
                t.add_(torch.rand_like(t) * 0.5)
    return model


def images(n=5, seed=1):
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def reference_cam(model, x, classes):
    """Grad-CAM at model.features' output with torch.autograd.grad, in float64."""
    model = model.double()
    maps = model.features(x.double())
    scores = model.head(model.classifier(maps))
    (grads,) = torch.autograd.grad(scores[torch.arange(len(x)), classes].sum(), maps)
    cam = F.relu((grads.mean(dim=(2, 3), keepdim=True) * maps).sum(1, keepdim=True))
    model.float()
    return F.interpolate(cam, size=(28, 28), mode="bilinear", align_corners=False)[:, 0]


def check_matches_autograd(impl):
    model, x = small_model(), images()
    classes = torch.tensor([0, 3, 9, 3, 5])
    got = impl.grad_cam(model, model.features[-1], x, classes)
    assert got.shape == (5, 28, 28) and not got.requires_grad
    torch.testing.assert_close(got.double(), reference_cam(model, x, classes), rtol=1e-4, atol=1e-5)
    assert (got >= 0).all() and got.amax() > 0


def check_predicted_class_by_default(impl):
    model, x = small_model(), images()
    predicted = model(x).argmax(1)
    torch.testing.assert_close(impl.grad_cam(model, model.features[-1], x),
                               impl.grad_cam(model, model.features[-1], x, predicted))
    other = (predicted + 1) % 10
    assert not torch.allclose(impl.grad_cam(model, model.features[-1], x, other),
                              impl.grad_cam(model, model.features[-1], x, predicted))


def plain_model():
    """A model with no shape checks of its own: the errors must come from grad_cam."""
    torch.manual_seed(2)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 5, 3, padding=1),
                         nn.Tanh(), nn.Flatten(), nn.Linear(5 * 14 * 14, 4))


def check_any_layer_with_register_hook(impl):
    """At the first block (14 x 14 maps) of another model, against a reference that catches the gradient with
    Tensor.register_hook."""
    model = plain_model()
    x, classes = images(3), torch.tensor([1, 0, 3])
    caught = {}

    def forward_keeping(x):
        maps = model[:3](x)
        maps.register_hook(lambda g: caught.setdefault("grad", g))
        return maps, model[3:](maps)

    maps, scores = forward_keeping(x)
    scores.gather(1, classes[:, None]).sum().backward()
    cam = F.relu((caught["grad"].mean(dim=(2, 3), keepdim=True) * maps).sum(1, keepdim=True))
    want = F.interpolate(cam, size=(28, 28), mode="bilinear", align_corners=False)[:, 0]
    model.zero_grad(set_to_none=True)
    torch.testing.assert_close(impl.grad_cam(model, model[2], x, classes), want.detach(), rtol=1e-4, atol=1e-6)


def check_leaves_no_trace(impl):
    """No hook outlives the call, the parameters' .grad stay unset, and the result does not depend on the batch."""
    model, x = small_model(), images()
    layer = model.features[-1]
    maps = impl.grad_cam(model, layer, x)
    assert not layer._forward_hooks and not layer._backward_hooks
    assert all(p.grad is None for p in model.parameters())
    torch.testing.assert_close(impl.grad_cam(model, layer, x[:2]), maps[:2])


def check_errors(impl):
    model, x = small_model(), images()
    with pytest.raises(ValueError, match="layer"):
        impl.grad_cam(model, nn.ReLU(), x)  # not part of the model
    plain = plain_model()
    for wrong in (x[0], x[None]):  # 3-d (which a conv would take as one unbatched image) and 5-d
        with pytest.raises(ValueError, match=re.escape(str(list(wrong.shape)))):
            impl.grad_cam(plain, plain[2], wrong)
    for classes in (torch.tensor([1, 2]), torch.arange(7), torch.zeros(5, 1, dtype=torch.long)):
        with pytest.raises(ValueError, match="classes"):
            impl.grad_cam(model, model.features[-1], x, classes)
    with pytest.raises(ValueError, match=r"\[5, 16\]"):
        impl.grad_cam(model, model.classifier[1], x)  # a layer without a spatial layout
    volumes = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Unflatten(1, (2, 2)), nn.Flatten(), nn.Linear(4 * 784, 3))
    with pytest.raises(ValueError, match=r"\[5, 2, 2, 28, 28\]"):
        impl.grad_cam(volumes, volumes[1], x)  # 5-d maps


def check_rank_correlation(impl):
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(4, 6, 6, generator=g), torch.rand(4, 6, 6, generator=g)
    b[1] = a[1] ** 3  # the same ranks: 1
    b[2] = -a[2]  # reversed: -1
    got = impl.rank_correlation(a, b)
    want = [spearmanr(x.flatten(), y.flatten()).statistic for x, y in zip(a, b)]
    torch.testing.assert_close(got.double(), torch.tensor(want, dtype=torch.float64), rtol=1e-6, atol=1e-9)
    assert got[1] == pytest.approx(1.0) and got[2] == pytest.approx(-1.0)
    for x, y in ((a, b[:, :5]), (a[:, :5], b)):
        with pytest.raises(ValueError, match="shape"):
            impl.rank_correlation(x, y)
    # a constant map has no ranks: nan, without scipy's warning; a two-valued map has ranks (ties)
    flat, binary = torch.full((6, 6), 0.5), (a[0] > 0.5).float()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = impl.rank_correlation(torch.stack([flat, a[1], flat, binary]), torch.stack([a[0], flat, flat, a[2]]))
    assert got[:3].isnan().all()
    assert got[3].item() == pytest.approx(spearmanr(binary.flatten(), a[2].flatten()).statistic, rel=1e-6)


def check_reinitialize(impl):
    torch.manual_seed(0)
    conv, linear, norm = nn.Conv2d(8, 64, 3), nn.Linear(400, 300), nn.BatchNorm2d(4)
    with torch.no_grad():
        norm.weight.fill_(3), norm.bias.fill_(2), norm.running_mean.fill_(1), norm.running_var.fill_(5)
    relu = nn.ReLU()
    for module in (conv, linear, norm, relu):
        impl.reinitialize(module, torch.Generator().manual_seed(0))
    assert conv.weight.std().item() == pytest.approx((8 * 9) ** -0.5, rel=0.05)
    assert linear.weight.std().item() == pytest.approx(400 ** -0.5, rel=0.05)
    assert not conv.bias.any() and not linear.bias.any()
    for t, value in ((norm.weight, 1), (norm.bias, 0), (norm.running_mean, 0), (norm.running_var, 1)):
        assert torch.equal(t, torch.full_like(t, value))
    again = nn.Conv2d(8, 64, 3)
    impl.reinitialize(again, torch.Generator().manual_seed(0))
    assert torch.equal(again.weight, conv.weight), "the weights must come from the generator"


def check_cascade(impl):
    model, x = small_model(), images(6)
    classes = torch.arange(6)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    blocks = {"nothing": [], "head": ["head"], "features": ["features.0", "features.2", "features.4"]}
    result = impl.cascading_randomization(model, lambda m: m.features[-1], x, classes, blocks,
                                          torch.Generator().manual_seed(0))
    assert list(result) == list(blocks) and all(v.shape == (6,) for v in result.values())
    torch.testing.assert_close(result["nothing"], torch.ones(6, dtype=result["nothing"].dtype))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} of the trained model changed"
    # the cascade keeps what it re-initialised: the last step's maps are those of the model re-initialised in full
    full = small_model()
    g = torch.Generator().manual_seed(0)
    for name in ["head", "features.0", "features.2", "features.4"]:
        for module in full.get_submodule(name).modules():
            impl.reinitialize(module, g)
    want = impl.rank_correlation(impl.grad_cam(model, model.features[-1], x, classes),
                                 impl.grad_cam(full, full.features[-1], x, classes))
    torch.testing.assert_close(result["features"], want, equal_nan=True)
    assert not torch.allclose(result["head"], result["features"], equal_nan=True)


CHECKS = [check_matches_autograd, check_predicted_class_by_default, check_any_layer_with_register_hook,
          check_leaves_no_trace, check_errors, check_rank_correlation, check_reinitialize, check_cascade]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_grad_cam(impl, check):
    check(impl)


# deliberately broken solutions, each built from the reference with one part wrong


def reference(**broken):
    from torchkata.vision import gradcam

    parts = {name: getattr(gradcam, name) for name in
             ("grad_cam", "rank_correlation", "reinitialize", "cascading_randomization")}
    return SimpleNamespace(**{**parts, **broken})


def cam_with(weights=lambda g: g.mean(dim=(2, 3), keepdim=True), relu=True, remove_hook=True):
    def grad_cam(model, layer, images, classes=None):
        caught = {}
        handle = layer.register_forward_hook(lambda m, a, out: caught.setdefault("maps", out))
        model.eval()
        scores = model(images)
        if remove_hook:
            handle.remove()
        if "maps" not in caught:
            raise ValueError("layer not called")
        classes = scores.argmax(1) if classes is None else classes
        if classes.shape != (len(images),) or images.dim() != 4 or caught["maps"].dim() != 4:
            raise ValueError(f"classes / shape {list(images.shape)} {list(caught['maps'].shape)}")
        (grads,) = torch.autograd.grad(scores.gather(1, classes[:, None]).sum(), caught["maps"])
        cam = (weights(grads) * caught["maps"]).sum(1, keepdim=True)
        cam = F.relu(cam) if relu else cam
        return F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0].detach()
    return grad_cam


def pearson(a, b):
    if a.shape != b.shape:
        raise ValueError("shape")
    return torch.stack([torch.corrcoef(torch.stack([x.flatten(), y.flatten()]))[0, 1] for x, y in zip(a, b)])


def reinitialize_in_place(model, layer_of, images, classes, blocks, generator):
    from torchkata.vision.gradcam import grad_cam, rank_correlation, reinitialize

    original = grad_cam(model, layer_of(model), images, classes)
    result = {}
    for block, names in blocks.items():
        for name in names:
            for module in model.get_submodule(name).modules():
                reinitialize(module, generator)
        result[block] = rank_correlation(original, grad_cam(model, layer_of(model), images, classes))
    return result


def uses_torch_default_init(module, generator):
    if isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
        module.reset_parameters()


@pytest.mark.suite_check
@pytest.mark.parametrize("broken, rejected_by", [
    ({"grad_cam": cam_with(weights=lambda g: g.sum(dim=(2, 3), keepdim=True))}, "check_matches_autograd"),
    ({"grad_cam": cam_with(weights=lambda g: g.abs().mean(dim=(2, 3), keepdim=True))}, "check_matches_autograd"),
    ({"grad_cam": cam_with(weights=lambda g: g)}, "check_any_layer_with_register_hook"),
    ({"grad_cam": cam_with(relu=False)}, "check_matches_autograd"),
    ({"grad_cam": cam_with(remove_hook=False)}, "check_leaves_no_trace"),
    ({"rank_correlation": pearson}, "check_rank_correlation"),
    ({"cascading_randomization": reinitialize_in_place}, "check_cascade"),
    ({"reinitialize": uses_torch_default_init}, "check_reinitialize"),
], ids=["summed-gradients", "absolute-gradients", "gradient-times-activation", "no-relu", "hook-left-behind",
        "pearson-not-spearman", "randomizes-the-trained-model", "not-from-the-generator"])
def test_broken_solution_is_rejected(broken, rejected_by):
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], reference(**broken)) == [rejected_by]
