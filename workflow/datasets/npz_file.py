"""Reading a ``.npz`` archive (arrays ``X`` and ``y``, names configurable) into features and a target."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from workflow.datasets.common import (
    NO_CLASSES,
    DataError,
    check_classes,
    check_kind,
    check_rows,
    default_names,
    encode_labels,
    label_text,
    list_names,
    open_problem,
    split_sizes,
)


def read_npz(path: str | Path, *, kind: str, x_key: str, y_key: str,
              val_fraction: float) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    check_kind(kind)
    file = Path(path)
    name = file.name
    try:
        handle = open(file, "rb")  # noqa: SIM115 - closed below; errors are ours
    except OSError as error:
        raise open_problem(file, error) from error
    with handle:
        try:
            archive = np.load(handle, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise DataError("task.path", str(path), f"not a .npz file ({error})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError("task.path", str(path), "holds a single array (.npy), not a .npz archive; save it "
                                                    "with np.savez(path, X=..., y=...)")
        with archive:
            keys = list(archive.files)
            x = _npz_array(archive, "task.x_key", x_key, name, keys)
            y = _npz_array(archive, "task.y_key", y_key, name, keys)

    if x.ndim != 2 or x.dtype.kind not in "biuf":
        raise DataError("task.x_key", x_key, f"array of shape {x.shape} and dtype {x.dtype} in {name}; "
                                             "expected a 2-D numeric array (rows, features)")
    if x.shape[1] == 0:
        raise DataError("task.x_key", x_key, f"array of shape {x.shape} in {name} has no feature columns")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError("task.y_key", y_key, f"array of shape {y.shape} in {name}; expected 1-D (rows,)")
    if len(y) != len(x):
        raise DataError("task.y_key", y_key, f"{len(y)} values in {name} but task.x_key={x_key!r} has "
                                             f"{len(x)} rows; they must match")
    check_rows(path, len(x))
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError("task.x_key", x_key, f"non-finite value {x[row, col]} in column {col} (row {row}) of "
                                             f"{name}; only finite numbers are allowed")
    if kind == "regression":
        if y.dtype.kind not in "biuf":
            raise DataError("task.y_key", y_key, f"array of dtype {y.dtype} in {name} is not numeric; "
                                                 "task.kind='regression' needs numbers")
        y_bad = ~np.isfinite(y)
        if y_bad.any():
            row = int(np.argmax(y_bad))
            raise DataError("task.y_key", y_key, f"non-finite value {y[row]} at row {row} of {name}; "
                                                 "only finite numbers are allowed")
        targets, classes = y.astype(np.float64), NO_CLASSES
    else:
        if y.dtype.kind not in "biufUS":
            raise DataError("task.y_key", y_key, f"array of dtype {y.dtype} in {name}; expected numbers or "
                                                 "strings as class labels")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            row = int(np.argmax(~np.isfinite(y)))
            raise DataError("task.y_key", y_key, f"non-finite label {y[row]} at row {row} of {name}")
        targets, classes = _encode_npz_labels(y)
        check_classes("task.y_key", y_key, name, classes)
    split_sizes(len(x), val_fraction)
    return x.astype(np.float64), targets, default_names(x.shape[1]), classes


def _npz_array(archive: Any, key: str, array_key: str, name: str, keys: list[str]) -> np.ndarray:
    if array_key not in keys:
        raise DataError(key, array_key, f"no such array in {name}; arrays: {list_names(keys)}")
    try:
        return np.asarray(archive[array_key])
    except ValueError as error:  # an object (pickled) array
        raise DataError(key, array_key, f"cannot be read from {name} ({error}); save numbers or fixed-width "
                                        "strings, not Python objects") from None


def _encode_npz_labels(y: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    if y.dtype.kind in "US":
        return encode_labels(y.tolist())
    distinct, indices = np.unique(y, return_inverse=True)
    return indices.reshape(-1).astype(np.int64), tuple(label_text(v) for v in distinct)
