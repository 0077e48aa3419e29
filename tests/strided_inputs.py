"""Hypothesis strategies for strided tensors: views of a fresh tensor through random permutes, step slices and
stride-0 expands, so that inputs are non-contiguous in every way torch allows. Every element is distinct
(an arange), so an element read from the wrong place shows. Used by b01-07, b01-09 and m1-core-1's graders."""
from __future__ import annotations

import math

import torch
from hypothesis import Phase
from hypothesis import strategies as st

# no shrinking: a broken solution is reported with the first example that fails it, and graded in well under a second
SETTINGS = dict(max_examples=60, deadline=None, derandomize=True, database=None,
                phases=(Phase.explicit, Phase.generate))


@st.composite
def shapes(draw, min_rank=0, max_rank=4, min_size=0, max_size=5):
    rank = draw(st.integers(min_rank, max_rank))
    return tuple(draw(st.lists(st.integers(min_size, max_size), min_size=rank, max_size=rank)))


@st.composite
def strided_tensors(draw, min_rank=0, max_rank=4, dtype=torch.float64):
    """A view of an arange through up to three permutes, step slices or expands."""
    shape = draw(shapes(min_rank, max_rank, min_size=draw(st.sampled_from([0, 1, 1, 1]))))
    x = torch.arange(math.prod(shape), dtype=dtype).reshape(shape)
    for op in draw(st.lists(st.sampled_from(["permute", "slice", "expand"]), max_size=3)):
        if x.dim() == 0:
            break
        if op == "permute":
            x = x.permute(draw(st.permutations(range(x.dim()))))
        elif op == "slice":
            dim = draw(st.integers(0, x.dim() - 1))
            start = draw(st.integers(0, x.shape[dim]))
            step = draw(st.integers(1, 3))
            x = x.narrow(dim, start, x.shape[dim] - start)[(slice(None),) * dim + (slice(None, None, step),)]
        else:  # a new size-1 dim broadcast to 1-3 copies: stride 0
            dim = draw(st.integers(0, x.dim()))
            x = x.unsqueeze(dim).expand(*x.shape[:dim], draw(st.integers(1, 3)), *x.shape[dim:])
    return x


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0] if n else [0, 1, 2]


@st.composite
def shapes_of(draw, numel: int, max_rank=4):
    """A shape holding `numel` elements, of rank 0 (if numel is 1) to max_rank."""
    rank = draw(st.integers(0 if numel == 1 else 1, max_rank))
    sizes, left = [], numel
    for _ in range(rank - 1):
        size = draw(st.sampled_from(divisors(left)))
        sizes.append(size)
        left = left // size if size else left
    if rank:
        sizes.append(left if math.prod(sizes) else draw(st.integers(0, 3)))
    order = draw(st.permutations(range(rank)))
    return tuple(sizes[i] for i in order)


@st.composite
def item_for(draw, size: int):
    """An int (negative too) or a slice (ends past either side, step 1-3 or None) for a dim of `size`."""
    if size and draw(st.booleans()):
        return draw(st.integers(-size, size - 1))
    end = st.none() | st.integers(-size - 2, size + 2)
    return slice(draw(end), draw(end), draw(st.sampled_from([None, 1, 2, 3])))


@st.composite
def basic_indices(draw, shape):
    """A basic index for `shape`: ints and slices for some leading and (after a `...`) trailing dims, with up to two
    None inserted anywhere; sometimes a bare item instead of a tuple."""
    ndim = len(shape)
    lead = draw(st.integers(0, ndim))
    ellipsis = draw(st.booleans())
    trail = draw(st.integers(0, ndim - lead)) if ellipsis else 0
    items = [draw(item_for(size)) for size in shape[:lead]]
    if ellipsis:
        items += [Ellipsis] + [draw(item_for(size)) for size in shape[ndim - trail:]]
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    if len(items) == 1 and draw(st.booleans()):
        return items[0]
    return tuple(items)
