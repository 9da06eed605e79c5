"""Tabular tasks from the user's files (``csv``, ``npz``) and scikit-learn's bundled ``digits``, as numpy arrays.

Nothing here imports torch: the driver (a login node) calls :func:`check_csv` / :func:`check_npz` to refuse a
bad file before anything is submitted, and the compute nodes call :func:`load_csv` / :func:`load_npz` /
:func:`load_digits` and turn the arrays into tensors themselves. Every problem with a file is one
:class:`DataError` whose ``str()`` is one line naming the configuration option (``task.path``, ``task.target``,
``task.features``, ``task.kind``, ``task.x_key``, ``task.y_key``, ``task.val_fraction``), the value and what is
expected.

Conventions, the same for every loader:

* ``kind="regression"``: the target is a number, ``train_y``/``val_y`` are float32 ``(N, 1)`` and are
  standardised with the *training* part's mean and standard deviation, as the sinewave task does, so that a
  constant predictor scores a validation MSE of about 1.0 whatever the units (``digits`` is the exception:
  its target stays the raw label 0..9, the seed's "MSE on the label").
* ``kind="classification"``: the target is any label, numeric or text. The distinct values are sorted
  (numerically when every label parses as a finite number, else as text in code-point order, so ``"10"``
  sorts before ``"9"``) and mapped to class indices ``0..C-1``; ``classes`` holds the original values as
  strings in index order. Targets are int64 ``(N,)``.
* Features are float32 ``(N, n_features)``, standardised per column with the training part's statistics
  (a constant column is only centred: its standard deviation counts as 1).
* The split is a seeded permutation, ``np.random.default_rng(seed).permutation(n)``: its first
  ``round(n * val_fraction)`` rows validate and the rest train. The same file and seed give identical arrays.
* Nothing is imputed: an empty cell, ``nan`` or ``inf`` in a feature or a regression target is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workflow.datasets.common import (
    KINDS,
    MIN_ROWS,
    DataError,
    TabularData,
    check_kind,
    default_names,
    split_and_standardise,
)
from workflow.datasets.csv_file import read_csv
from workflow.datasets.npz_file import read_npz

__all__ = ["KINDS", "MIN_ROWS", "DataError", "TabularData", "check_csv", "check_npz", "load_csv", "load_digits",
           "load_npz", "split_and_standardise"]


def load_csv(path: str | Path, *, target: str, kind: str, features: Sequence[str] | None = None,
             val_fraction: float = 0.2, seed: int = 0) -> TabularData:
    """The CSV file's split and standardised arrays.

    The first line is the header (names are stripped of surrounding blanks; columns with an empty name, such
    as a pandas index written without ``index=False``, are ignored). ``target`` names the target column.
    ``features`` lists the input columns in the order given; by default every other column whose values are all
    numbers (``float()`` parses them) is used, in file order, and a column with any text in it is skipped.
    Raises :class:`DataError`.
    """
    x, y, names, classes = read_csv(path, target=target, kind=kind, features=features, val_fraction=val_fraction)
    return split_and_standardise(x, y, kind=kind, val_fraction=val_fraction, seed=seed, feature_names=names,
                                 classes=classes)


def check_csv(path: str | Path, *, target: str, kind: str, features: Sequence[str] | None = None,
              val_fraction: float = 0.2) -> None:
    """Raise the :class:`DataError` that :func:`load_csv` would raise, if any (the driver's check)."""
    read_csv(path, target=target, kind=kind, features=features, val_fraction=val_fraction)


def load_npz(path: str | Path, *, kind: str, x_key: str = "X", y_key: str = "y", val_fraction: float = 0.2,
             seed: int = 0) -> TabularData:
    """The ``.npz`` file's split and standardised arrays: ``x_key`` is a 2-D numeric array (rows, features),
    ``y_key`` a 1-D array (or ``(rows, 1)``) of targets. Features are named ``x0``, ``x1``, ...; rows in
    error messages count from 0. Pickled (object) arrays are refused. Raises :class:`DataError`."""
    x, y, names, classes = read_npz(path, kind=kind, x_key=x_key, y_key=y_key, val_fraction=val_fraction)
    return split_and_standardise(x, y, kind=kind, val_fraction=val_fraction, seed=seed, feature_names=names,
                                 classes=classes)


def check_npz(path: str | Path, *, kind: str, x_key: str = "X", y_key: str = "y", val_fraction: float = 0.2) -> None:
    """Raise the :class:`DataError` that :func:`load_npz` would raise, if any (the driver's check)."""
    read_npz(path, kind=kind, x_key=x_key, y_key=y_key, val_fraction=val_fraction)


def load_digits(*, kind: str, val_fraction: float = 0.2, seed: int = 0) -> TabularData:
    """scikit-learn's bundled 8x8 digits (1,797 images, 64 pixel features; nothing is downloaded).

    ``classification``: 10 classes ``"0"``..``"9"``. ``regression``: the seed's "MSE on the label", one output
    whose target is the digit's value 0..9 as a float, *not* standardised (so MSEs compare with the seed's).
    """
    check_kind(kind)
    from sklearn.datasets import load_digits as sklearn_digits  # slow to import; only this task needs it

    bunch = sklearn_digits()
    x = np.asarray(bunch.data, dtype=np.float64)
    labels = np.asarray(bunch.target, dtype=np.int64)
    names = tuple(str(n) for n in getattr(bunch, "feature_names", ())) or default_names(x.shape[1])
    if kind == "classification":
        return split_and_standardise(x, labels, kind=kind, val_fraction=val_fraction, seed=seed,
                                     feature_names=names, classes=tuple(str(c) for c in range(10)))
    return split_and_standardise(x, labels.astype(np.float64), kind=kind, val_fraction=val_fraction, seed=seed,
                                 feature_names=names, classes=(), standardise_target=False)
