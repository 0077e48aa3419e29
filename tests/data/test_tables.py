"""scikit-learn's bundled tables, prepared once into data/sklearn-tables/."""
import pytest
import torch

from torchkata.data import tables


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("tables")
    tables.prepare(out)
    return out


def test_every_table_is_prepared_whole(folder):
    from sklearn import datasets

    for name, task in tables.TABLES.items():
        table, bunch = tables.load(folder, name), getattr(datasets, f"load_{name}")()
        assert table["task"] == task
        assert table["features"].dtype == torch.float64 and table["features"].shape == bunch.data.shape
        torch.testing.assert_close(table["features"], torch.from_numpy(bunch.data), rtol=0, atol=0)
        assert table["targets"].dtype == (torch.float64 if task == "regression" else torch.int64)
        assert table["targets"].tolist() == bunch.target.tolist()
        assert len(table["feature_names"]) == bunch.data.shape[1]


def test_unknown_table_is_named(folder):
    with pytest.raises(ValueError, match="'mnist'"):
        tables.load(folder, "mnist")


def test_split_is_seeded_disjoint_and_whole(folder):
    table = tables.load(folder, "diabetes")
    train, test = tables.split(table, 0.2, torch.Generator().manual_seed(0))
    again, _ = tables.split(table, 0.2, torch.Generator().manual_seed(0))
    assert len(test["targets"]) == round(442 * 0.2) and len(train["targets"]) + len(test["targets"]) == 442
    assert torch.equal(train["features"], again["features"])
    rows = torch.cat([train["features"], test["features"]])
    assert torch.equal(rows.sort(dim=0).values, table["features"].sort(dim=0).values)
    with pytest.raises(ValueError, match="test_fraction"):
        tables.split(table, 1.0, torch.Generator())


def test_standardize_uses_the_training_statistics():
    train = torch.tensor([[1.0, 5.0], [3.0, 5.0]], dtype=torch.float64)
    other = torch.tensor([[2.0, 6.0]], dtype=torch.float64)
    scaled_train, scaled_other = tables.standardize(train, other)
    torch.testing.assert_close(scaled_train.mean(dim=0), torch.zeros(2, dtype=torch.float64))
    # the constant column is centred, not divided by a zero std
    torch.testing.assert_close(scaled_other, torch.tensor([[0.0, 1.0]], dtype=torch.float64))
