"""What every tabular loader shares: the data type, the one-line error, the split, label encoding."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

Kind = Literal["regression", "classification"]

KINDS: tuple[str, ...] = ("regression", "classification")

#: A file with fewer data rows than this is refused (the split and the statistics would be meaningless).
MIN_ROWS = 10

NO_CLASSES: tuple[str, ...] = ()

#: How many column or array names an error message lists before it writes "...".
MAX_LISTED = 10


class DataError(ValueError):
    """A data file cannot be used as asked.

    ``str()`` is one line, ``<key>=<value>: <problem>``, for example
    ``task.target='price': no such column in data.csv; columns: a, b, c``. ``key`` is the configuration option
    to change, ``value`` the value it had (for per-column problems, the column's name) and ``problem`` what is
    wrong and what is expected.
    """

    def __init__(self, key: str, value: object, problem: str) -> None:
        self.key, self.value, self.problem = key, value, problem
        super().__init__(f"{key}={format_value(value)}: {problem}")


@dataclass(frozen=True, eq=False)
class TabularData:
    """A tabular task's train/validation arrays (see the module's docstring for the conventions)."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    kind: Kind
    n_outputs: int
    feature_names: tuple[str, ...]
    classes: tuple[str, ...] = ()

    @property
    def n_features(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.train_x.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.val_x.shape[0])


def split_and_standardise(x: np.ndarray, y: np.ndarray, *, kind: str, val_fraction: float, seed: int,
                          feature_names: Sequence[str], classes: Sequence[str],
                          standardise_target: bool = True) -> TabularData:
    """Split ``(x, y)`` with a seeded permutation and standardise with the training part's statistics.

    ``x`` is ``(n, n_features)``. For ``regression`` ``y`` holds numbers (``(n,)`` or ``(n, 1)``), standardised
    like the features unless ``standardise_target`` is false; for ``classification`` it holds class indices
    ``0..len(classes)-1``. Raises :class:`DataError` for ``kind`` and for a ``val_fraction`` that leaves either
    part without rows, and ``ValueError`` for arrays that do not fit together (a caller's mistake).
    """
    check_kind(kind)
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (rows, features), got shape {x.shape}")
    n = int(x.shape[0])
    if y.shape not in ((n,), (n, 1)):
        raise ValueError(f"y must have shape ({n},) or ({n}, 1) to match x {x.shape}, got {y.shape}")
    if len(feature_names) != x.shape[1]:
        raise ValueError(f"{len(feature_names)} feature names for {x.shape[1]} feature columns")
    n_val = split_sizes(n, val_fraction)
    order = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = order[:n_val], order[n_val:]

    x64 = x.astype(np.float64)
    mean, std = fit(x64[train_idx])
    xs = ((x64 - mean) / std).astype(np.float32)
    y = y.reshape(n)
    ys: np.ndarray
    class_names: tuple[str, ...]
    if kind == "classification":
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"classification targets must be integer class indices, got dtype {y.dtype}")
        if n and (int(y.min()) < 0 or int(y.max()) >= len(classes)):
            raise ValueError(f"class indices must lie in 0..{len(classes) - 1}, got {int(y.min())}..{int(y.max())}")
        ys = y.astype(np.int64)
        n_outputs = len(classes)
        class_names = tuple(str(c) for c in classes)
    else:
        y64 = y.astype(np.float64)
        if standardise_target:
            y_mean, y_std = fit(y64[train_idx, None])
            y64 = (y64 - y_mean[0]) / y_std[0]
        ys = y64.astype(np.float32).reshape(n, 1)
        n_outputs = 1
        class_names = ()
    return TabularData(train_x=xs[train_idx], train_y=ys[train_idx], val_x=xs[val_idx], val_y=ys[val_idx],
                       kind=cast(Kind, kind), n_outputs=n_outputs, feature_names=tuple(feature_names),
                       classes=class_names)


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise DataError("task.kind", kind, f"allowed: {', '.join(KINDS)}")


def split_sizes(n: int, val_fraction: float) -> int:
    """The number of validation rows; a :class:`DataError` when either part would be empty."""
    if not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
        raise DataError("task.val_fraction", val_fraction, "must lie strictly between 0 and 1")
    n_val = round(n * val_fraction)
    if n_val < 1:
        raise DataError("task.val_fraction", val_fraction,
                        f"leaves no validation row of {n} (round({n} * {val_fraction}) = {n_val}); raise it")
    if n_val > n - 1:
        raise DataError("task.val_fraction", val_fraction,
                        f"leaves no training row of {n} (round({n} * {val_fraction}) = {n_val}); lower it")
    return int(n_val)


def check_rows(path: str | Path, n: int) -> None:
    if n < MIN_ROWS:
        raise DataError("task.path", str(path), f"{n} data rows; at least {MIN_ROWS} needed")


def fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (0 counts as 1)."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def open_problem(path: Path, error: OSError) -> DataError:
    if isinstance(error, FileNotFoundError):
        where = "" if path.is_absolute() else f" (looked for {Path(os.path.abspath(path))})"
        return DataError("task.path", str(path), f"no such file{where}")
    if isinstance(error, IsADirectoryError):
        return DataError("task.path", str(path), "is a directory, not a file")
    if isinstance(error, PermissionError):
        return DataError("task.path", str(path), "cannot be read: permission denied")
    return DataError("task.path", str(path), f"cannot be read: {error.strerror or error}")


def encode_labels(labels: Sequence[Any]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices in sorted order of the distinct values, and those values as strings.

    Numbers (ints, floats, bools, or strings that all parse as finite floats) sort numerically and values
    equal as numbers (``"1"`` and ``"1.0"``) are one class, named by its first spelling; anything else sorts
    as text.
    """
    numbers = as_numbers(labels)
    if numbers is not None:
        first: dict[float, str] = {}
        for value, label in zip(numbers.tolist(), labels):
            first.setdefault(value, label_text(label))
        distinct = np.array(sorted(first), dtype=np.float64)
        indices = np.searchsorted(distinct, numbers)
        return indices.astype(np.int64), tuple(first[v] for v in distinct.tolist())
    texts = [label_text(label) for label in labels]
    names = sorted(set(texts))
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[t] for t in texts], dtype=np.int64), tuple(names)


def as_numbers(labels: Sequence[Any]) -> np.ndarray | None:
    values: list[float] = []
    for label in labels:
        if isinstance(label, bytes):
            return None
        try:
            value = float(label)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(value):
            return None
        values.append(value)
    return np.array(values, dtype=np.float64)


def label_text(label: Any) -> str:
    if isinstance(label, bytes):
        return label.decode("utf-8", errors="replace")
    if isinstance(label, np.generic):
        return str(label.item())
    return str(label)


def check_classes(key: str, value: object, file_name: str, classes: tuple[str, ...]) -> None:
    if len(classes) < 2:
        only = f" ({classes[0]!r})" if classes else ""
        raise DataError(key, value, f"only one class{only} in {file_name}; task.kind='classification' needs at least 2")


def default_names(n: int) -> tuple[str, ...]:
    return tuple(f"x{i}" for i in range(n))


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def list_names(names: Iterable[str]) -> str:
    items = list(names)
    if len(items) <= MAX_LISTED:
        return ", ".join(items)
    return ", ".join(items[:MAX_LISTED]) + f", ... ({len(items)} in all)"


def format_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, (str, Path)):
        return repr(str(value))
    return str(value)
