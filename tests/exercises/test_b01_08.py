"""b01-08: one-hot encoding by hand, graded against F.one_hot."""
import inspect

import pytest
import torch
import torch.nn.functional as F

from grading import failing_checks

EXERCISE = "b01-08"
INTEGER_DTYPES = [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8]


@pytest.fixture(scope="module")
def one_hot(impl_for):
    return impl_for(EXERCISE).one_hot


def check_matches_torch(one_hot):
    for shape in [(5,), (3, 4), (2, 3, 4), (), (1,)]:
        for dtype in INTEGER_DTYPES:
            for num_classes in (-1, 7, 12):
                labels = torch.randint(0, 7, shape, dtype=dtype)
                got = one_hot(labels, num_classes)
                want = F.one_hot(labels.long(), num_classes)  # F.one_hot itself takes int64 only
                assert got.dtype == torch.int64, got.dtype
                assert got.shape == want.shape, (shape, num_classes, got.shape, want.shape)
                assert torch.equal(got, want), (shape, dtype, num_classes)


def check_non_contiguous(one_hot):
    labels = torch.randint(0, 5, (4, 6)).t()[::2]
    assert not labels.is_contiguous()
    assert torch.equal(one_hot(labels, 5), F.one_hot(labels, 5))


def check_infers_num_classes(one_hot):
    assert one_hot(torch.tensor([0, 3])).shape == (2, 4)  # max + 1, not the number of distinct labels
    assert one_hot(torch.tensor([2, 2])).shape == (2, 3)
    assert torch.equal(one_hot(torch.zeros(3, dtype=torch.int64)), torch.ones(3, 1, dtype=torch.int64))
    labels = torch.tensor([[1, 4], [0, 2]])
    assert torch.equal(one_hot(labels), F.one_hot(labels))  # the default is -1 too


def check_largest_class_fits(one_hot):
    for num_classes in (1, 3, 10):  # label num_classes - 1 is the last class, not out of range
        labels = torch.tensor([num_classes - 1, 0])
        assert torch.equal(one_hot(labels, num_classes), F.one_hot(labels, num_classes))


def check_empty(one_hot):
    assert one_hot(torch.empty(0, dtype=torch.int64), 3).shape == (0, 3)
    got = one_hot(torch.empty(2, 0, dtype=torch.int32), 4)
    assert got.shape == (2, 0, 4) and got.dtype == torch.int64


def check_non_integer_labels_refused(one_hot):
    for labels in (torch.tensor([0.0, 1.0]), torch.tensor([0, 1], dtype=torch.float16), torch.tensor([True, False]),
                   torch.tensor([1 + 0j])):
        with pytest.raises(TypeError) as error:
            one_hot(labels, 2)
        assert str(labels.dtype) in str(error.value), str(error.value)


def check_negative_labels_refused(one_hot):
    for labels in (torch.tensor([0, -1, 2]), torch.tensor([[-3]], dtype=torch.int8)):
        with pytest.raises(ValueError) as error:
            one_hot(labels, 4)
        assert str(int(labels.min())) in str(error.value) and "negative" in str(error.value), str(error.value)
    with pytest.raises(ValueError):
        one_hot(torch.tensor([-1, 0]))  # with num_classes inferred too


def check_out_of_range_labels_refused(one_hot):
    for labels, num_classes in ((torch.tensor([0, 5, 2]), 5), (torch.tensor([9]), 3)):
        with pytest.raises(ValueError) as error:
            one_hot(labels, num_classes)
        message = str(error.value)
        assert str(int(labels.max())) in message and f"num_classes={num_classes}" in message, message


def check_bad_num_classes_refused(one_hot):
    for num_classes in (0, -2, -5):
        for labels in (torch.tensor([0, 1]), torch.empty(0, dtype=torch.int64)):  # no label to blame: the count is wrong
            with pytest.raises(ValueError) as error:
                one_hot(labels, num_classes)
            assert str(num_classes) in str(error.value), str(error.value)


def check_cannot_infer_from_empty(one_hot):
    with pytest.raises(ValueError) as error:
        one_hot(torch.empty(0, dtype=torch.int64))
    assert "num_classes" in str(error.value) and "empty" in str(error.value), str(error.value)


def check_leaves_labels_alone(one_hot):
    labels = torch.tensor([3, 1], dtype=torch.int32)
    one_hot(labels, 4)
    assert labels.tolist() == [3, 1] and labels.dtype == torch.int32


CHECKS = [check_matches_torch, check_non_contiguous, check_infers_num_classes, check_largest_class_fits, check_empty,
          check_non_integer_labels_refused, check_negative_labels_refused, check_out_of_range_labels_refused,
          check_bad_num_classes_refused, check_cannot_infer_from_empty, check_leaves_labels_alone]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_one_hot(one_hot, check):
    check(one_hot)


# deliberately broken solutions


def infers_max(labels, num_classes=-1):
    """num_classes = max, one short: the largest label has no column."""
    n = int(labels.max()) if num_classes == -1 else num_classes
    return (labels.long().unsqueeze(-1) == torch.arange(n)).long()


def silent_out_of_range(labels, num_classes=-1):
    """The comparison trick with no checks: an out-of-range label gives a row of zeros."""
    n = int(labels.max()) + 1 if num_classes == -1 else num_classes
    return (labels.long().unsqueeze(-1) == torch.arange(n)).long()


def float_result(labels, num_classes=-1):
    return F.one_hot(labels.long(), num_classes).float()


def classes_first(labels, num_classes=-1):
    """The class axis in front instead of last."""
    return F.one_hot(labels.long(), num_classes).movedim(-1, 0)


def accepts_floats(labels, num_classes=-1):
    return F.one_hot(labels.long(), num_classes)


@pytest.mark.suite_check
@pytest.mark.parametrize("broken", [infers_max, silent_out_of_range, float_result, classes_first, accepts_floats],
                         ids=lambda f: f.__name__)
def test_broken_one_hot_is_rejected(broken):
    assert failing_checks(CHECKS, broken)


@pytest.mark.suite_check
def test_no_builtin_one_hot_in_reference():
    from torchkata.tensors import one_hot as module

    source = inspect.getsource(module)
    assert "F.one_hot(" not in source and "functional.one_hot" not in source and "torch.eye" not in source
