"""Tabular tasks (``csv``, ``npz``, ``digits``): parsing, defaults, split, train-only statistics, every error."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workflow.datasets import csv_file, npz_file
from workflow.datasets.tabular import (
    DataError,
    TabularData,
    check_csv,
    check_npz,
    load_csv,
    load_digits,
    load_npz,
    split_and_standardise,
)

N = 20


def rows(n: int = N) -> list[list[Any]]:
    """a, b, city, y with y = 2a - b; ``city`` is text, so it is not a default feature."""
    return [[i, (i * 7) % 5 + 0.5, ["Paris", "Rome"][i % 2], 2 * i - ((i * 7) % 5 + 0.5)] for i in range(n)]


def csv_text(header: str = "a,b,city,y", body: list[list[Any]] | None = None) -> str:
    body = rows() if body is None else body
    return header + "\n" + "".join(",".join(str(v) for v in r) + "\n" for r in body)


def write(tmp_path: Path, text: str | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def raw(n: int = N) -> tuple[np.ndarray, np.ndarray]:
    r = rows(n)
    return np.array([[v[0], v[1]] for v in r], dtype=np.float64), np.array([v[3] for v in r], dtype=np.float64)


# ----------------------------------------------------------------------------------------------- CSV regression


def test_regression_csv_shapes_dtypes_and_default_features(tmp_path):
    data = load_csv(write(tmp_path, csv_text()), target="y", kind="regression", val_fraction=0.25, seed=1)
    assert isinstance(data, TabularData)
    assert data.feature_names == ("a", "b")  # city holds text: skipped
    assert data.kind == "regression" and data.n_outputs == 1 and data.classes == ()
    assert data.train_x.shape == (15, 2) and data.val_x.shape == (5, 2)
    assert data.train_y.shape == (15, 1) and data.val_y.shape == (5, 1)
    assert {a.dtype for a in (data.train_x, data.train_y, data.val_x, data.val_y)} == {np.dtype(np.float32)}
    assert (data.n_train, data.n_val, data.n_features) == (15, 5, 2)


def test_split_is_the_seeded_permutation_and_statistics_come_from_training_only(tmp_path):
    data = load_csv(write(tmp_path, csv_text()), target="y", kind="regression", val_fraction=0.25, seed=7)
    x, y = raw()
    order = np.random.default_rng(7).permutation(N)
    val, train = order[:5], order[5:]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    np.testing.assert_allclose(data.train_x, (x[train] - mean) / std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data.val_x, (x[val] - mean) / std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data.val_y[:, 0], (y[val] - y[train].mean()) / y[train].std(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data.train_x.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(data.train_x.std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose([data.train_y.mean(), data.train_y.std()], [0, 1], atol=1e-5)
    assert np.abs(data.val_x.mean(axis=0)).max() > 1e-3  # not fitted on the validation part
    assert np.abs(data.val_x.std(axis=0) - 1).max() > 1e-3


def test_explicit_features_keep_the_given_order(tmp_path):
    path = write(tmp_path, csv_text())
    data = load_csv(path, target="y", kind="regression", features=["b", "a"])
    assert data.feature_names == ("b", "a")
    both = load_csv(path, target="y", kind="regression")
    np.testing.assert_array_equal(data.train_x, both.train_x[:, ::-1])
    only_a = load_csv(path, target="y", kind="regression", features=("a",))
    assert only_a.train_x.shape == (16, 1) and only_a.feature_names == ("a",)


def test_same_seed_same_arrays_other_seed_other_split(tmp_path):
    path = write(tmp_path, csv_text())
    one, two = (load_csv(path, target="y", kind="regression", seed=3) for _ in range(2))
    for name in ("train_x", "train_y", "val_x", "val_y"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    other = load_csv(path, target="y", kind="regression", seed=4)
    assert not np.array_equal(one.val_x, other.val_x)


@pytest.mark.parametrize(("n", "fraction", "n_val"), [(20, 0.2, 4), (20, 0.5, 10), (10, 0.05, 0), (13, 0.3, 4)])
def test_split_sizes_round_n_times_fraction(tmp_path, n, fraction, n_val):
    path = write(tmp_path, csv_text(body=rows(n)))
    if n_val == 0:
        with pytest.raises(DataError) as info:
            load_csv(path, target="y", kind="regression", val_fraction=fraction)
        assert info.value.key == "task.val_fraction"
        return
    data = load_csv(path, target="y", kind="regression", val_fraction=fraction)
    assert (data.n_val, data.n_train) == (n_val, n - n_val)


def test_quoted_fields_blank_lines_and_spaces(tmp_path):
    body = "".join(f'{i}, "{i * 1.5}" ,"{["Paris, FR", "Rome"][i % 2]}",{i % 3}\n\n' for i in range(12))
    data = load_csv(write(tmp_path, "a, b ,city,y\n" + body), target="y", kind="regression")
    assert data.feature_names == ("a", "b")
    assert data.n_train + data.n_val == 12


def test_unnamed_columns_are_ignored(tmp_path):
    """A pandas index written without ``index=False`` has an empty header name."""
    body = "".join(f"{i},{i * 2},{i % 4}\n" for i in range(12))
    data = load_csv(write(tmp_path, ",a,y\n" + body), target="y", kind="regression")
    assert data.feature_names == ("a",)


def test_constant_feature_is_centred_not_divided_by_zero(tmp_path):
    body = "".join(f"{i},5,{i % 2}\n" for i in range(12))
    data = load_csv(write(tmp_path, "a,const,y\n" + body), target="y", kind="regression")
    assert np.all(data.train_x[:, 1] == 0) and np.all(data.val_x[:, 1] == 0)


# ----------------------------------------------------------------------------------------------- CSV classification


def test_string_labels_map_to_indices_in_sorted_order(tmp_path):
    labels = ["dog", "cat", "ant"]
    body = [[i, i % 5, labels[i % 3]] for i in range(N)]
    data = load_csv(write(tmp_path, csv_text("a,b,animal", body)), target="animal", kind="classification", seed=2)
    assert data.classes == ("ant", "cat", "dog") and data.n_outputs == 3 and data.kind == "classification"
    assert data.train_y.dtype == np.int64 and data.train_y.shape == (16,) and data.val_y.shape == (4,)
    assert data.train_x.dtype == np.float32 and data.feature_names == ("a", "b")
    order = np.random.default_rng(2).permutation(N)
    expected = np.array([data.classes.index(labels[i % 3]) for i in order])
    np.testing.assert_array_equal(np.concatenate([data.val_y, data.train_y]), expected)


def test_numeric_labels_sort_numerically_and_keep_their_spelling(tmp_path):
    labels = ["10", "9", "2", "9.0"]  # 9 and 9.0 are one class, named by its first spelling
    body = [[i, labels[i % 4]] for i in range(N)]
    data = load_csv(write(tmp_path, csv_text("a,label", body)), target="label", kind="classification")
    assert data.classes == ("2", "9", "10")
    order = np.random.default_rng(0).permutation(N)
    expected = np.array([{"2": 0, "9": 1, "9.0": 1, "10": 2}[labels[i % 4]] for i in order])
    np.testing.assert_array_equal(np.concatenate([data.val_y, data.train_y]), expected)


def test_classification_features_still_standardised_on_train(tmp_path):
    body = [[i, i * i, "yes" if i % 2 else "no"] for i in range(N)]
    data = load_csv(write(tmp_path, csv_text("a,b,ok", body)), target="ok", kind="classification")
    np.testing.assert_allclose(data.train_x.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(data.train_x.std(axis=0), 1, atol=1e-5)
    assert data.classes == ("no", "yes")


# ----------------------------------------------------------------------------------------------- CSV errors

REG: dict[str, Any] = {"target": "y", "kind": "regression"}

#: id -> (file text or bytes, load_csv keyword arguments, key, a fragment of the message)
CSV_ERRORS: dict[str, tuple[str | bytes, dict[str, Any], str, str]] = {
    "empty-file": ("", REG, "task.path", "is empty; expected a CSV file whose first line is the header"),
    "no-header": (csv_text("1,2,3,4"), REG, "task.path", "looks like data, not a header"),
    "one-column": ("y\n" + "1\n" * 12, REG, "task.path", "the header has one column ('y')"),
    "duplicate-header": (csv_text("a,a,city,y"), REG, "task.path", "names column 'a' twice"),
    "ragged-row": (csv_text() + "1,2\n", REG, "task.path", f"line {N + 2} has 2 fields but the header has 4"),
    "not-utf8": (b"a,b,y\n\xff\xfe,1,2\n", REG, "task.path", "not a text CSV file (not UTF-8"),
    "unknown-target": (csv_text(), {**REG, "target": "price"}, "task.target", "no such column in data.csv"),
    "unknown-feature": (csv_text(), {**REG, "features": ["a", "zz"]}, "task.features",
                        "task.features='zz': no such column in data.csv; columns: a, b, city, y"),
    "feature-is-target": (csv_text(), {**REG, "features": ["a", "y"]}, "task.features", "is the target"),
    "feature-twice": (csv_text(), {**REG, "features": ["a", "a"]}, "task.features", "listed twice"),
    "features-empty": (csv_text(), {**REG, "features": []}, "task.features", "is empty"),
    "features-string": (csv_text(), {**REG, "features": "a"}, "task.features", "not one string"),
    "text-feature": (csv_text(), {**REG, "features": ["a", "city"]}, "task.features",
                     "task.features='city': not numeric: 'Paris' on line 2 of data.csv"),
    "empty-feature-cell": (csv_text(body=rows()[:5] + [[5, "", "Rome", 1]] + rows()[6:]), REG, "task.features",
                           "task.features='b': empty cell on line 7 of data.csv"),
    "nan-feature": (csv_text(body=rows()[:3] + [["nan", 1, "Rome", 1]] + rows()[4:]), REG, "task.features",
                    "task.features='a': non-finite value 'nan' on line 5 of data.csv"),
    "inf-explicit-feature": (csv_text(body=rows()[:3] + [[3, "-inf", "Rome", 1]] + rows()[4:]),
                             {**REG, "features": ["b"]}, "task.features", "non-finite value '-inf' on line 5"),
    "empty-target": (csv_text(body=rows()[:8] + [[8, 1, "Rome", " "]] + rows()[9:]), REG, "task.target",
                     "task.target='y': empty cell on line 10 of data.csv"),
    "text-target": (csv_text(), {**REG, "target": "city"}, "task.target",
                    "task.target='city': not numeric: 'Paris' on line 2 of data.csv; task.kind='regression' needs "
                    "numbers (use 'classification' for labels)"),
    "inf-target": (csv_text(body=rows()[:2] + [[2, 1, "Rome", "inf"]] + rows()[3:]), REG, "task.target",
                   "task.target='y': non-finite value 'inf' on line 4 of data.csv"),
    "one-class": (csv_text("a,b,label", [[i, i, "same"] for i in range(12)]), {"target": "label",
                  "kind": "classification"}, "task.target",
                  "task.target='label': only one class ('same') in data.csv; task.kind='classification' needs "
                  "at least 2"),
    "nan-label": (csv_text("a,label", [[i, ["1", "2", "nan"][i % 3]] for i in range(12)]),
                  {"target": "label", "kind": "classification"}, "task.target", "non-finite label 'nan' on line 4"),
    "no-features": (csv_text("name,y", [["n" + str(i), i] for i in range(12)]), REG, "task.features",
                    "task.features=None: no numeric column besides the target 'y' in data.csv; columns: name, y"),
    "too-few-val": (csv_text(), {**REG, "val_fraction": 0.01}, "task.val_fraction",
                    "task.val_fraction=0.01: leaves no validation row of 20"),
    "too-few-train": (csv_text(), {**REG, "val_fraction": 0.99}, "task.val_fraction",
                      "task.val_fraction=0.99: leaves no training row of 20"),
    "bad-kind": (csv_text(), {**REG, "kind": "ordinal"}, "task.kind",
                 "task.kind='ordinal': allowed: regression, classification"),
}


@pytest.mark.parametrize("case", list(CSV_ERRORS))
def test_csv_errors_name_the_option(tmp_path, case):
    text, kwargs, key, fragment = CSV_ERRORS[case]
    path = write(tmp_path, text)
    with pytest.raises(DataError) as info:
        load_csv(path, **kwargs)
    assert info.value.key == key
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("case", list(CSV_ERRORS))
def test_check_csv_raises_what_load_csv_raises(tmp_path, case):
    text, kwargs, _, _ = CSV_ERRORS[case]
    path = write(tmp_path, text)
    with pytest.raises(DataError) as loaded:
        load_csv(path, **kwargs)
    kwargs = {k: v for k, v in kwargs.items() if k != "seed"}
    with pytest.raises(DataError) as checked:
        check_csv(path, **kwargs)
    assert (checked.value.key, str(checked.value)) == (loaded.value.key, str(loaded.value))


def test_check_csv_accepts_a_good_file(tmp_path):
    assert check_csv(write(tmp_path, csv_text()), target="y", kind="regression") is None


def test_exact_messages(tmp_path):
    path = write(tmp_path, "a,b,c\n" + "1,2,3\n" * 12)
    with pytest.raises(DataError) as info:
        load_csv(path, target="price", kind="regression")
    assert str(info.value) == "task.target='price': no such column in data.csv; columns: a, b, c"
    assert (info.value.key, info.value.value) == ("task.target", "price")
    assert info.value.problem == "no such column in data.csv; columns: a, b, c"

    small = write(tmp_path, csv_text(body=rows(9)), "small.csv")
    with pytest.raises(DataError) as info:
        load_csv(small, target="y", kind="regression")
    assert str(info.value) == f"task.path={str(small)!r}: 9 data rows; at least 10 needed"

    missing = tmp_path / "missing.csv"
    with pytest.raises(DataError) as info:
        check_csv(missing, target="y", kind="regression")
    assert str(info.value) == f"task.path={str(missing)!r}: no such file"
    assert info.value.key == "task.path"


def test_many_columns_are_listed_up_to_ten(tmp_path):
    names = [f"c{i}" for i in range(25)]
    path = write(tmp_path, ",".join(names) + "\n" + (",".join("1" * 25) + "\n") * 12)
    with pytest.raises(DataError) as info:
        load_csv(path, target="price", kind="regression")
    assert str(info.value).endswith("columns: c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, ... (25 in all)")


def test_relative_missing_path_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as info:
        load_csv("nope.csv", target="y", kind="regression")
    assert str(info.value) == f"task.path='nope.csv': no such file (looked for {tmp_path / 'nope.csv'})"


def test_directory_and_unreadable_file(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="is a directory") as info:
        load_csv(tmp_path, target="y", kind="regression")
    assert info.value.key == "task.path"

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    path = write(tmp_path, csv_text())
    for module in (csv_file, npz_file):  # works as root too, unlike chmod
        monkeypatch.setattr(module, "open", denied, raising=False)
    for check in (lambda: load_csv(path, **REG), lambda: check_npz(path, kind="regression")):
        with pytest.raises(DataError) as info:
            check()
        assert str(info.value) == f"task.path={str(path)!r}: cannot be read: permission denied"


def test_default_features_with_an_empty_cell_in_a_text_column_are_fine(tmp_path):
    body = rows()
    body[4][2] = ""
    data = load_csv(write(tmp_path, csv_text(body=body)), target="y", kind="regression")
    assert data.feature_names == ("a", "b")


# ----------------------------------------------------------------------------------------------- NPZ


def test_npz_regression_round_trip(tmp_path):
    x, y = raw()
    path = tmp_path / "data.npz"
    np.savez(path, X=x, y=y)
    data = load_npz(path, kind="regression", seed=5)
    csv_data = load_csv(write(tmp_path, csv_text()), target="y", kind="regression", seed=5)
    assert data.feature_names == ("x0", "x1") and data.classes == () and data.n_outputs == 1
    assert data.train_x.shape == (16, 2) and data.val_y.shape == (4, 1) and data.train_x.dtype == np.float32
    np.testing.assert_array_equal(data.train_x, csv_data.train_x)
    np.testing.assert_array_equal(data.val_y, csv_data.val_y)


def test_npz_custom_keys_column_targets_and_string_labels(tmp_path):
    x, _ = raw()
    labels = np.array(["b", "a", "c", "a"] * 5)
    path = tmp_path / "d.npz"
    np.savez_compressed(path, features=x.astype(np.int32), labels=labels[:, None])
    data = load_npz(path, kind="classification", x_key="features", y_key="labels")
    assert data.classes == ("a", "b", "c") and data.n_outputs == 3
    assert data.train_y.dtype == np.int64 and data.train_y.shape == (16,)
    order = np.random.default_rng(0).permutation(N)
    np.testing.assert_array_equal(np.concatenate([data.val_y, data.train_y]),
                                  [{"a": 0, "b": 1, "c": 2}[v] for v in labels[order]])


def test_npz_numeric_labels(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=raw()[0], y=np.array([7, 3, 11, 3] * 5))
    data = load_npz(path, kind="classification")
    assert data.classes == ("3", "7", "11")


def npz_case(tmp_path: Path, case: str) -> Path:
    x, y = raw()
    path = tmp_path / "data.npz"
    arrays: dict[str, Any] = {
        "missing-x": {"features": x, "y": y},
        "missing-y": {"X": x, "target": y},
        "x-1d": {"X": y, "y": y},
        "x-text": {"X": np.array([["a", "b"]] * N), "y": y},
        "x-no-columns": {"X": np.zeros((N, 0)), "y": y},
        "y-length": {"X": x, "y": y[:-1]},
        "y-2d": {"X": x, "y": np.stack([y, y], axis=1)},
        "y-text-regression": {"X": x, "y": np.array(["a"] * N)},
        "x-nan": {"X": np.where(np.arange(N)[:, None] * [1, 1] == [3, 3], [0, np.nan], x), "y": y},
        "y-inf": {"X": x, "y": np.where(np.arange(N) == 6, np.inf, y)},
        "few-rows": {"X": x[:9], "y": y[:9]},
        "one-class": {"X": x, "y": np.ones(N, dtype=np.int64)},
        "object-y": None,
    }[case]
    if case == "object-y":
        np.savez(path, X=x, y=np.array([{"a": 1}] * N, dtype=object))
    else:
        np.savez(path, **arrays)
    return path


NPZ_ERRORS: dict[str, tuple[str, str, str]] = {
    "missing-x": ("regression", "task.x_key", "task.x_key='X': no such array in data.npz; arrays: features, y"),
    "missing-y": ("regression", "task.y_key", "task.y_key='y': no such array in data.npz; arrays: X, target"),
    "x-1d": ("regression", "task.x_key", "expected a 2-D numeric array (rows, features)"),
    "x-text": ("regression", "task.x_key", "dtype <U1"),
    "x-no-columns": ("regression", "task.x_key", "has no feature columns"),
    "y-length": ("regression", "task.y_key",
                 "task.y_key='y': 19 values in data.npz but task.x_key='X' has 20 rows; they must match"),
    "y-2d": ("regression", "task.y_key", "expected 1-D"),
    "y-text-regression": ("regression", "task.y_key", "is not numeric"),
    "x-nan": ("regression", "task.x_key", "non-finite value nan in column 1 (row 3) of data.npz"),
    "y-inf": ("regression", "task.y_key", "non-finite value inf at row 6 of data.npz"),
    "few-rows": ("regression", "task.path", "9 data rows; at least 10 needed"),
    "one-class": ("classification", "task.y_key", "only one class ('1') in data.npz"),
    "object-y": ("classification", "task.y_key", "not Python objects"),
}


@pytest.mark.parametrize("case", list(NPZ_ERRORS))
def test_npz_errors(tmp_path, case):
    kind, key, fragment = NPZ_ERRORS[case]
    path = npz_case(tmp_path, case)
    with pytest.raises(DataError) as loaded:
        load_npz(path, kind=kind)
    assert loaded.value.key == key and fragment in str(loaded.value), str(loaded.value)
    with pytest.raises(DataError) as checked:
        check_npz(path, kind=kind)
    assert str(checked.value) == str(loaded.value)


@pytest.mark.parametrize(("content", "fragment"), [(b"not an archive at all", "not a .npz file"),
                                                     (None, "holds a single array (.npy)")])
def test_npz_file_that_is_not_an_archive(tmp_path, content, fragment):
    path = tmp_path / "data.npz"
    if content is None:
        with path.open("wb") as handle:
            np.save(handle, np.zeros((12, 2)))
    else:
        path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(fragment)) as info:
        check_npz(path, kind="regression")
    assert info.value.key == "task.path"


def test_npz_missing_file(tmp_path):
    with pytest.raises(DataError) as info:
        load_npz(tmp_path / "gone.npz", kind="regression")
    assert str(info.value) == f"task.path={str(tmp_path / 'gone.npz')!r}: no such file"


# ----------------------------------------------------------------------------------------------- digits


def test_digits_regression_is_the_raw_label_with_one_output():
    data = load_digits(kind="regression", val_fraction=0.2, seed=0)
    assert data.n_train + data.n_val == 1797 and data.n_val == round(1797 * 0.2)
    assert data.n_features == 64 and len(data.feature_names) == 64
    assert data.n_outputs == 1 and data.classes == () and data.kind == "regression"
    assert data.train_y.shape == (data.n_train, 1) and data.train_y.dtype == np.float32
    labels = np.concatenate([data.train_y, data.val_y]).ravel()
    assert set(labels.tolist()) == set(range(10))  # not standardised
    np.testing.assert_allclose(data.train_x.mean(axis=0), 0, atol=1e-5)


def test_digits_classification_has_ten_classes():
    data = load_digits(kind="classification", seed=1)
    assert data.n_outputs == 10 and data.classes == tuple(str(i) for i in range(10))
    assert data.train_y.dtype == np.int64 and data.train_y.ndim == 1
    assert set(np.concatenate([data.train_y, data.val_y]).tolist()) == set(range(10))
    assert data.train_x.shape[0] + data.val_x.shape[0] == 1797 and data.train_x.dtype == np.float32
    regression = load_digits(kind="regression", seed=1)
    np.testing.assert_array_equal(regression.val_y[:, 0], data.val_y.astype(np.float32))


def test_digits_bad_kind():
    with pytest.raises(DataError) as info:
        load_digits(kind="mse")
    assert info.value.key == "task.kind"


# ----------------------------------------------------------------------------------------------- split directly


def test_split_and_standardise_directly():
    x = np.arange(30, dtype=np.float64).reshape(10, 3)
    y = np.array([0, 1] * 5)
    data = split_and_standardise(x, y, kind="classification", val_fraction=0.3, seed=0,
                                 feature_names=["p", "q", "r"], classes=["no", "yes"])
    assert (data.n_train, data.n_val, data.classes, data.feature_names) == (7, 3, ("no", "yes"), ("p", "q", "r"))
    raw_y = split_and_standardise(x, y.astype(float), kind="regression", val_fraction=0.3, seed=0,
                                  feature_names="pqr", classes=(), standardise_target=False)
    assert set(raw_y.train_y.ravel().tolist()) <= {0.0, 1.0}
    for fraction in (0.0, 1.0, 0.01):
        with pytest.raises(DataError) as info:
            split_and_standardise(x, y, kind="classification", val_fraction=fraction, seed=0,
                                  feature_names="pqr", classes=["no", "yes"])
        assert info.value.key == "task.val_fraction"
    with pytest.raises(ValueError, match="class indices"):
        split_and_standardise(x, y + 5, kind="classification", val_fraction=0.3, seed=0, feature_names="pqr",
                              classes=["no", "yes"])


def test_data_error_formats_values():
    assert str(DataError("task.features", ["a", "b"], "x")) == "task.features=['a', 'b']: x"
    assert str(DataError("task.val_fraction", 0.5, "y")) == "task.val_fraction=0.5: y"
    assert str(DataError("task.path", Path("/d/f.csv"), "z")) == "task.path='/d/f.csv': z"


def test_importing_needs_neither_torch_nor_sklearn():
    code = ("import sys, json\nimport workflow.datasets.tabular\n"
            "print(json.dumps([m for m in ('torch', 'sklearn', 'pandas') if m in sys.modules]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
