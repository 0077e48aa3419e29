"""a11: a ModuleList by hand, graded against nn.ModuleList: registration (parameters, named_modules, .to, .train),
indexing, slicing, append, extend, insert, del, len, iteration and state_dict keys; and a network of dynamic depth."""
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grading import failing_checks

EXERCISE = "a11"


@pytest.fixture(scope="module")
def impl(impl_for):
    return impl_for(EXERCISE)


def layers(n=4):
    return [nn.Linear(i + 2, i + 3) for i in range(n)]


def keys(container):
    return [name for name, _ in container.named_children()]


def check_registration(impl):
    parts = [nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)]
    ours, theirs = impl.ModuleList(parts), nn.ModuleList(parts)
    assert [id(p) for p in ours.parameters()] == [id(p) for p in theirs.parameters()]
    assert [(name, id(m)) for name, m in ours.named_modules()][1:] == [(name, id(m)) for name, m in theirs.named_modules()][1:]
    assert [name for name, _ in ours.named_buffers()] == [name for name, _ in theirs.named_buffers()]
    ours.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in parts[0].parameters()) and parts[1].running_mean.dtype == torch.float64
    ours.eval()
    assert not any(m.training for m in parts)
    ours.train()
    assert all(m.training for m in parts)
    optimizer = torch.optim.SGD(impl.ModuleList(layers(3)).parameters(), lr=0.1)
    assert len(optimizer.param_groups[0]["params"]) == 6
    empty = impl.ModuleList()
    assert len(empty) == 0 and list(empty) == [] and empty.state_dict() == {} and len(impl.ModuleList(None)) == 0


def check_indexing(impl):
    parts = layers()
    ours = impl.ModuleList(parts)
    for i in range(-4, 4):
        assert ours[i] is parts[i]
    for bad in (4, 7, -5):
        with pytest.raises(IndexError, match=str(bad)):
            ours[bad]
    with pytest.raises(TypeError):
        ours["0"]
    replacement = nn.Tanh()
    ours[-1] = replacement
    ours[1] = nn.ReLU()
    assert ours[3] is replacement and isinstance(ours[1], nn.ReLU) and keys(ours) == ["0", "1", "2", "3"]
    assert replacement in list(ours.modules())
    with pytest.raises(TypeError):
        ours[0] = "not a module"
    with pytest.raises(IndexError, match="4"):
        ours[4] = nn.ReLU()


def check_slicing(impl):
    parts = layers(5)
    ours = impl.ModuleList(parts)
    for piece in (slice(1, 3), slice(None, None, -1), slice(-2, None), slice(0, 5, 2), slice(7, None)):
        sliced = ours[piece]
        assert type(sliced) is type(ours)
        assert list(sliced) == parts[piece] and keys(sliced) == [str(i) for i in range(len(parts[piece]))]
    assert list(ours) == parts  # slicing leaves the original alone


def check_append_extend_insert(impl):
    parts = layers(6)
    ours, want = impl.ModuleList(), []
    assert ours.append(parts[0]) is ours
    assert ours.extend(m for m in parts[1:3]) is ours  # any iterable, a generator too
    ours += [parts[3]]
    want += parts[:4]
    for index, module in [(0, parts[4]), (2, parts[5]), (-1, nn.ReLU()), (-20, nn.Tanh()), (99, nn.GELU())]:
        ours.insert(index, module)
        want.insert(index, module)
        assert list(ours) == want and keys(ours) == [str(i) for i in range(len(want))]
    assert len(ours) == len(want) == 9
    assert [id(p) for p in ours.parameters()] == [id(p) for m in want for p in m.parameters()]
    with pytest.raises(TypeError):
        ours.append(3)
    with pytest.raises(TypeError, match="int"):
        ours.extend(3)
    with pytest.raises(TypeError):
        ours.insert(0, "not a module")
    assert len(ours) == 9


def check_delete(impl):
    parts = layers(6)
    ours, want = impl.ModuleList(parts), list(parts)
    for index in (1, -1, slice(0, 2), slice(None, None, 2)):
        del ours[index]
        del want[index]
        assert list(ours) == want and keys(ours) == [str(i) for i in range(len(want))]
        assert list(ours.state_dict()) == [f"{i}.{n}" for i in range(len(want)) for n in ("weight", "bias")]
    with pytest.raises(IndexError, match="5"):
        del ours[5]


def check_state_dict_round_trip(impl):
    def build(container):
        torch.manual_seed(0)
        return container([nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)])
    ours, theirs = build(impl.ModuleList), build(nn.ModuleList)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for module in theirs.modules():  # new values, then nn.ModuleList's state_dict into ours and back
        for tensor in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
            tensor.data.copy_(torch.randn_like(tensor.float()).to(tensor.dtype))
    ours.load_state_dict(theirs.state_dict())
    for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), k
    fresh = build(nn.ModuleList)
    fresh.load_state_dict(ours.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), theirs.state_dict().values()))
    for container in (ours, theirs):  # after the same edits the keys still agree
        del container[0]
        container.insert(1, nn.Linear(4, 4))
        container.append(nn.Linear(2, 1))
    assert list(ours.state_dict()) == list(theirs.state_dict())


def check_dynamic_depth(impl):
    torch.manual_seed(0)
    model = impl.DynamicDepthMLP(features=6, width=8, classes=3, depth=3)
    assert sum(p.numel() for p in model.parameters()) == 6 * 8 + 8 + 3 * 2 * (8 * 8 + 8) + 8 * 3 + 3
    x = torch.randn(5, 6)
    h = F.relu(model.stem(x))
    outputs = [model.head(h)]
    for block in model.blocks:
        h = h + block[2](F.relu(block[0](h)))
        outputs.append(model.head(h))
    for depth, want in enumerate(outputs):
        torch.testing.assert_close(model(x, depth=depth), want)
    torch.testing.assert_close(model(x), outputs[-1])  # all blocks by default
    with pytest.raises(ValueError, match="4"):
        model(x, depth=4)
    with pytest.raises(ValueError, match="-1"):
        model(x, depth=-1)
    before = model(x)
    model.grow()  # a new block that starts as the identity, registered: the optimizer and the state_dict see it
    assert len(model.blocks) == 4 and "blocks.3.2.weight" in model.state_dict()
    torch.testing.assert_close(model(x), before)
    assert sum(p.numel() for p in model.parameters()) == 6 * 8 + 8 + 4 * 2 * (8 * 8 + 8) + 8 * 3 + 3
    F.cross_entropy(model(x), torch.tensor([0, 1, 2, 0, 1])).backward()  # the new block learns: not a dead relu
    assert model.blocks[3][2].weight.grad.abs().sum() > 0
    twin = impl.DynamicDepthMLP(6, 8, 3, 4, container=nn.ModuleList)
    assert list(twin.state_dict()) == list(model.state_dict())
    twin.load_state_dict(model.state_dict())
    torch.testing.assert_close(twin(x, depth=2), model(x, depth=2))


CHECKS = [check_registration, check_indexing, check_slicing, check_append_extend_insert, check_delete,
          check_state_dict_round_trip, check_dynamic_depth]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_module_list(impl, check):
    check(impl)


def broken(reference):
    class PlainList(nn.Module):  # a Python list: nothing registered
        def __init__(self, modules=None):
            super().__init__()
            self.items = list(modules or [])

        def __getitem__(self, i):
            return self.items[i]

        def __len__(self):
            return len(self.items)

        def __iter__(self):
            return iter(self.items)

        def append(self, m):
            self.items.append(m)
            return self

    class SliceIsList(reference.ModuleList):
        def __getitem__(self, index):
            return list(self)[index] if isinstance(index, slice) else super().__getitem__(index)

    class NoRenumber(reference.ModuleList):
        def __delitem__(self, index):
            position = self._position(index) if isinstance(index, int) else None
            names = list(self._modules)
            for name in (names[index] if isinstance(index, slice) else [names[position]]):
                del self._modules[name]

    class NoNegative(reference.ModuleList):
        def __getitem__(self, index):
            if isinstance(index, int) and index < 0:
                raise IndexError(f"negative index {index}")
            return super().__getitem__(index)

    class InsertAppends(reference.ModuleList):
        def insert(self, index, module):
            self.append(module)

    class RandomGrowth(reference.DynamicDepthMLP):
        def grow(self):
            self.blocks.append(reference.block(self.stem.out_features))

    class DeadGrowth(reference.DynamicDepthMLP):  # identity at the start, but zeroing the first layer kills relu's gradient
        @torch.no_grad()
        def grow(self):
            new = reference.block(self.stem.out_features)
            new[0].weight.zero_()
            new[0].bias.zero_()
            self.blocks.append(new)

    def variant(**changes):
        return types.SimpleNamespace(**({"ModuleList": reference.ModuleList,
                                         "DynamicDepthMLP": reference.DynamicDepthMLP} | changes))
    return {
        "plain_list": (variant(ModuleList=PlainList), "check_registration"),
        "slice_is_list": (variant(ModuleList=SliceIsList), "check_slicing"),
        "no_renumber": (variant(ModuleList=NoRenumber), "check_delete"),
        "no_negative": (variant(ModuleList=NoNegative), "check_indexing"),
        "insert_appends": (variant(ModuleList=InsertAppends), "check_append_extend_insert"),
        "random_growth": (variant(DynamicDepthMLP=RandomGrowth), "check_dynamic_depth"),
        "dead_growth": (variant(DynamicDepthMLP=DeadGrowth), "check_dynamic_depth"),
    }


@pytest.mark.suite_check
@pytest.mark.parametrize("name", ["plain_list", "slice_is_list", "no_renumber", "no_negative", "insert_appends",
                                  "random_growth", "dead_growth"])
def test_broken_module_list_is_rejected(impl, name):
    implementation, rejected_by = broken(impl)[name]
    check = next(c for c in CHECKS if c.__name__ == rejected_by)
    assert failing_checks([check], implementation) == [rejected_by]
