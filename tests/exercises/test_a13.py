"""a13: attention and a Transformer encoder layer by hand, graded against F.scaled_dot_product_attention,
nn.MultiheadAttention and nn.TransformerEncoderLayer with the same weights."""
import inspect
import math
import re
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks

EXERCISE = "a13"
D, HEADS, FF = 8, 2, 12


@pytest.fixture(scope="module")
def attn(impl_for):
    return impl_for(EXERCISE)


def padding(n=3, length=5):
    mask = torch.zeros(n, length, dtype=torch.bool)
    mask[0, 3:] = True  # the first sequence is 3 long, the second 4, the third full
    mask[1, 4:] = True
    return mask


def assert_grads_equal(ours, theirs, x_ours, x_theirs, out_ours, out_theirs):
    weights = torch.randn_like(out_theirs)
    ours_grads = torch.autograd.grad((out_ours * weights).sum(), [x_ours, *ours.parameters()])
    theirs_grads = torch.autograd.grad((out_theirs * weights).sum(), [x_theirs, *theirs.parameters()])
    names = ["input", *(name for name, _ in theirs.named_parameters())]
    for name, got, want in zip(names, ours_grads, theirs_grads):
        torch.testing.assert_close(got, want, msg=lambda m: f"gradient of {name}: {m}")


def check_attention_matches_sdpa(attn):
    q, k = torch.randn(2, 3, 5, 4, dtype=torch.float64), torch.randn(2, 3, 6, 4, dtype=torch.float64)
    v = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    bool_mask = torch.rand(5, 6) > 0.3
    bool_mask[:, 0] = True  # every query sees at least one key
    float_mask = torch.randn(2, 1, 5, 6, dtype=torch.float64)
    for kwargs in [{}, {"attn_mask": bool_mask}, {"attn_mask": float_mask}]:
        torch.testing.assert_close(attn.scaled_dot_product_attention(q, k, v, **kwargs),
                                   F.scaled_dot_product_attention(q, k, v, **kwargs))
    square_k, square_v = k[:, :, :5], v[:, :, :5]
    torch.testing.assert_close(attn.scaled_dot_product_attention(q, square_k, square_v, is_causal=True),
                               F.scaled_dot_product_attention(q, square_k, square_v, is_causal=True))
    # float32, 3-D and non-contiguous (a transposed view)
    q32 = torch.randn(4, 5, 3).transpose(1, 2)
    k32, v32 = torch.randn(4, 6, 5), torch.randn(4, 6, 2)
    assert not q32.is_contiguous()
    torch.testing.assert_close(attn.scaled_dot_product_attention(q32, k32, v32),
                               F.scaled_dot_product_attention(q32, k32, v32))


def check_attention_gradients(attn):
    q, k, v = (torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = torch.randn(4, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b, c: attn.scaled_dot_product_attention(a, b, c, mask), (q, k, v))
    w = torch.randn(2, 4, 3, dtype=torch.float64)
    ours = torch.autograd.grad((attn.scaled_dot_product_attention(q, k, v, is_causal=True) * w).sum(), (q, k, v))
    want = torch.autograd.grad((F.scaled_dot_product_attention(q, k, v, is_causal=True) * w).sum(), (q, k, v))
    torch.testing.assert_close(ours, want)


def check_attention_dropout(attn):
    q, k, v = torch.randn(3, 4, 4), torch.randn(3, 4, 4), torch.ones(3, 4, 2)
    torch.manual_seed(0)
    out = attn.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    # with all values 1 each output is the sum of the kept weights, each scaled by 2: not 1 everywhere
    assert not torch.allclose(out, torch.ones_like(out))
    torch.testing.assert_close(attn.scaled_dot_product_attention(q, k, v), torch.ones_like(out))


def check_attention_errors(attn):
    q = torch.randn(2, 5, 4)
    with pytest.raises(ValueError, match=r"\(2, 5, 4\).*\(2, 5, 3\)"):
        attn.scaled_dot_product_attention(q, torch.randn(2, 5, 3), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"\(2, 5, 4\).*\(2, 5, 5\)"):  # k wider than q, too
        attn.scaled_dot_product_attention(q, torch.randn(2, 5, 5), torch.randn(2, 5, 4))
    for values in (torch.randn(2, 6, 4), torch.randn(2, 4, 4)):  # more values than keys, and fewer
        with pytest.raises(ValueError, match=re.escape(str(tuple(values.shape)))):
            attn.scaled_dot_product_attention(q, q, values)
    with pytest.raises(ValueError, match="is_causal"):
        attn.scaled_dot_product_attention(q, q, q, torch.ones(5, 5, dtype=torch.bool), is_causal=True)


def mha_pair(attn, dropout=0.0, heads=HEADS):
    ours = attn.MultiheadSelfAttention(D, heads, dropout=dropout).double()
    theirs = nn.MultiheadAttention(D, heads, dropout=dropout, batch_first=True).double()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def check_self_attention_matches_mha(attn):
    ours, theirs = mha_pair(attn)
    bool_mask = torch.rand(5, 5) > 0.5
    bool_mask.fill_diagonal_(False)  # True: may not attend (nn's convention); each query keeps itself
    for kwargs in [{}, {"key_padding_mask": padding()}, {"attn_mask": bool_mask},
                   {"attn_mask": torch.randn(5, 5, dtype=torch.float64), "key_padding_mask": padding()},
                   {"attn_mask": nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64),
                    "is_causal": True}]:
        x = torch.randn(3, 5, D, dtype=torch.float64, requires_grad=True)
        x2 = x.detach().clone().requires_grad_()
        want = theirs(x2, x2, x2, need_weights=False, **kwargs)[0]
        got = ours(x, **kwargs)
        torch.testing.assert_close(got, want, msg=lambda m: f"{sorted(kwargs)}: {m}")
        assert_grads_equal(ours, theirs, x, x2, got, want)
    x = torch.randn(3, 5, D, dtype=torch.float64)  # is_causal alone builds the causal mask
    causal = nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    torch.testing.assert_close(ours(x, is_causal=True), theirs(x, x, x, attn_mask=causal, need_weights=False)[0])
    for heads in (1, 4):  # the padding mask broadcasts over any number of heads, not just over two
        ours, theirs = mha_pair(attn, heads=heads)
        torch.testing.assert_close(ours(x, key_padding_mask=padding()),
                                   theirs(x, x, x, key_padding_mask=padding(), need_weights=False)[0])


def check_parameters_as_nn(attn):
    ours, theirs = attn.MultiheadSelfAttention(16, 4), nn.MultiheadAttention(16, 4, batch_first=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    assert not ours.in_proj_bias.any() and not ours.out_proj.bias.any()
    bound = math.sqrt(6 / (16 + 48))  # xavier_uniform on (48, 16)
    assert ours.in_proj_weight.abs().max() <= bound and ours.in_proj_weight.std() > 0.8 * bound / math.sqrt(3)
    assert ours.heads == 4 and ours.dropout == 0.0
    layer = attn.EncoderLayer(D, HEADS, FF, dropout=0.0)
    torch_layer = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True)
    assert {k: v.shape for k, v in layer.state_dict().items()} == {
        k: v.shape for k, v in torch_layer.state_dict().items()}
    defaults = attn.EncoderLayer(D, HEADS)
    assert defaults.linear1.out_features == 2048 and defaults.dropout.p == 0.1 and not defaults.norm_first
    assert defaults.norm1.eps == 1e-5 and defaults.self_attn.dropout == 0.1


def layer_pair(attn, norm_first, activation="relu", dropout=0.0):
    torch_layer = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=dropout, activation=activation, batch_first=True,
                                             norm_first=norm_first, layer_norm_eps=1e-6).double()
    ours = attn.EncoderLayer(D, HEADS, FF, dropout=dropout, activation=activation, layer_norm_eps=1e-6,
                             norm_first=norm_first).double()
    ours.load_state_dict(torch_layer.state_dict())
    return ours, torch_layer


def check_encoder_layer_matches(attn):
    for norm_first in (False, True):
        for activation in ("relu", "gelu"):
            ours, theirs = layer_pair(attn, norm_first, activation)
            for mode in ("train", "eval"):
                ours.train(mode == "train")
                theirs.train(mode == "train")
                x = torch.randn(3, 5, D, dtype=torch.float64, requires_grad=True)
                x2 = x.detach().clone().requires_grad_()
                got = ours(x, src_key_padding_mask=padding())
                want = theirs(x2, src_key_padding_mask=padding())
                torch.testing.assert_close(got, want, msg=lambda m: f"{norm_first=} {activation} {mode}: {m}")
                assert_grads_equal(ours, theirs, x, x2, got, want)


def check_encoder_layer_masks(attn):
    ours, theirs = layer_pair(attn, norm_first=False)
    x = torch.randn(3, 5, D, dtype=torch.float64)
    causal = nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    torch.testing.assert_close(ours(x, src_mask=causal, is_causal=True), theirs(x, src_mask=causal, is_causal=True))
    torch.testing.assert_close(ours(x, is_causal=True), theirs(x, src_mask=causal))
    torch.testing.assert_close(ours(x, src_mask=causal), theirs(x, src_mask=causal))
    # padded positions cannot reach the others
    x2 = x.clone()
    x2[0, 3:] = 100.0
    mask = padding()
    torch.testing.assert_close(ours(x2, src_key_padding_mask=mask)[~mask], ours(x, src_key_padding_mask=mask)[~mask])


def check_eval_fast_path_agrees(attn):
    # under no_grad in eval mode nn.TransformerEncoderLayer takes its fused path: the same numbers at real positions
    ours, theirs = layer_pair(attn, norm_first=True)
    ours.eval()
    theirs.eval()
    x, mask = torch.randn(3, 5, D, dtype=torch.float64), padding()
    with torch.no_grad():
        torch.testing.assert_close(ours(x, src_key_padding_mask=mask)[~mask], theirs(x, src_key_padding_mask=mask)[~mask])


def check_dropout_in_training_only(attn):
    layer = attn.EncoderLayer(D, HEADS, FF, dropout=0.5).double()
    x = torch.randn(3, 5, D, dtype=torch.float64)
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))
    ours_eval = layer(x)
    layer.train()
    assert not torch.allclose(layer(x), ours_eval)
    torch.manual_seed(1)  # the attention weights' dropout too: only it acts when the other dropouts are off
    layer.dropout.p = layer.dropout1.p = layer.dropout2.p = 0.0
    assert not torch.allclose(layer(x), ours_eval)
    layer.self_attn.dropout = 0.0
    torch.testing.assert_close(layer(x), ours_eval)


def check_errors(attn):
    for d_model, heads in [(10, 3), (8, 3)]:
        with pytest.raises(ValueError, match=rf"\b{d_model}\b.*\b{heads}\b"):
            attn.MultiheadSelfAttention(d_model, heads)
    with pytest.raises(ValueError, match="tanh"):
        attn.EncoderLayer(D, HEADS, activation="tanh")
    layer = attn.EncoderLayer(D, HEADS, FF)
    for shape in [(5, D), (1, 2, 5, D), (2, 5, D + 1), (2, 5, D - 1)]:  # too few dims, too many, too wide, too narrow
        with pytest.raises(ValueError, match=re.escape(f"(N, L, {D})") + ".*" + re.escape(str(shape))):
            layer(torch.randn(shape))


def check_no_builtin_attention(attn):
    source = inspect.getsource(attn)
    for forbidden in ("F.scaled_dot_product_attention(", "import scaled_dot_product_attention",
                      "MultiheadAttention(", "TransformerEncoderLayer(", "multi_head_attention_forward",
                      "_transformer_encoder_layer_fwd", "_native_multi_head_attention"):
        assert forbidden not in source, forbidden
    banned = mock.Mock(side_effect=AssertionError("a built-in attention was called"))
    layer = attn.EncoderLayer(D, HEADS, FF, dropout=0.0)
    with mock.patch.object(F, "scaled_dot_product_attention", banned), \
            mock.patch.object(F, "multi_head_attention_forward", banned):
        layer(torch.randn(2, 5, D), src_key_padding_mask=torch.zeros(2, 5, dtype=torch.bool)).sum().backward()


CHECKS = [check_attention_matches_sdpa, check_attention_gradients, check_attention_dropout, check_attention_errors,
          check_self_attention_matches_mha, check_parameters_as_nn, check_encoder_layer_matches,
          check_encoder_layer_masks, check_eval_fast_path_agrees, check_dropout_in_training_only, check_errors,
          check_no_builtin_attention]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_attention(attn, check):
    check(attn)


def reference_with(**overrides):
    from torchkata.nn import attention

    return SimpleNamespace(**{**vars(attention), **overrides})


def unscaled(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
    return (q @ k.transpose(-2, -1)).softmax(-1) @ v


def softmax_over_queries(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
    from torchkata.nn import attention

    return attention.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal).flip(-2)


class NormAfterOnlyLayer(nn.Module):
    """Ignores norm_first: always post-norm."""

    def __new__(cls, *args, norm_first=False, **kwargs):
        from torchkata.nn import attention

        return attention.EncoderLayer(*args, norm_first=False, **kwargs)


@pytest.mark.suite_check
@pytest.mark.parametrize("broken", [reference_with(scaled_dot_product_attention=unscaled),
                                    reference_with(scaled_dot_product_attention=softmax_over_queries),
                                    reference_with(EncoderLayer=NormAfterOnlyLayer)],
                         ids=["unscaled", "flipped", "post_norm_only"])
def test_broken_attention_is_rejected(broken):
    assert failing_checks(CHECKS, broken)
