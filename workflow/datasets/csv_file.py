"""Reading a CSV file with a header into features and a target, refusing what cannot be used (one line each)."""

from __future__ import annotations

import csv
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from workflow.datasets.common import (
    DataError,
    check_classes,
    check_kind,
    check_rows,
    encode_labels,
    is_number,
    list_names,
    open_problem,
    split_sizes,
)


@dataclass
class _Column:
    """One CSV column while the file is read: its numbers and the first line of each kind of problem."""

    name: str
    index: int
    values: array = field(default_factory=lambda: array("d"))
    bad: tuple[int, str] | None = None  # first text that float() refuses
    empty: int | None = None  # first empty cell
    nonfinite: tuple[int, str] | None = None  # first nan / inf

    def add(self, line: int, cell: str) -> None:
        if not cell:
            if self.empty is None:
                self.empty = line
            self.values.append(math.nan)
            return
        if self.bad is not None:
            return
        try:
            value = float(cell)
        except ValueError:
            self.bad = (line, cell)
            self.values = array("d")  # not a number column: stop keeping its values
            return
        if self.nonfinite is None and not math.isfinite(value):
            self.nonfinite = (line, cell)
        self.values.append(value)


def read_csv(path: str | Path, *, target: str, kind: str, features: Sequence[str] | None,
              val_fraction: float) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    check_kind(kind)
    file = Path(path)
    name = file.name
    if isinstance(features, str):
        raise DataError("task.features", features, "must be a list of column names, not one string")
    try:
        handle = open(file, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed below; errors are ours
    except OSError as error:
        raise open_problem(file, error) from error
    with handle:
        reader = csv.reader(handle, skipinitialspace=True)
        try:
            header = _read_header(path, reader)
            columns = [c.strip() for c in header]
            feature_cols, explicit = _select_columns(path, columns, target, features)
            target_state = _Column(target, columns.index(target))
            states = {col: _Column(col, columns.index(col)) for col in feature_cols}
            labels: list[str] = []
            for row in reader:
                if not row:
                    continue  # a blank line
                line = reader.line_num
                if len(row) != len(header):
                    raise DataError("task.path", str(path),
                                    f"line {line} has {len(row)} fields but the header has {len(header)}; "
                                    "not a well-formed CSV file")
                label = row[target_state.index].strip()
                labels.append(label)
                target_state.add(line, label)
                for state in states.values():
                    state.add(line, row[state.index].strip())
        except csv.Error as error:
            raise DataError("task.path", str(path), f"not a valid CSV file: {error} (line {reader.line_num})") from None
        except UnicodeDecodeError:
            raise DataError("task.path", str(path),
                            "not a text CSV file (not UTF-8)") from None

    check_rows(path, len(labels))
    y, classes = _csv_target(name, target_state, labels, kind)
    used: list[_Column] = []
    for state in states.values():
        problem = _feature_problem(state, explicit, name)
        if problem is not None:
            raise DataError("task.features", state.name, problem)
        if state.bad is None:
            used.append(state)
    if not used:
        raise DataError("task.features", None, f"no numeric column besides the target {target!r} in {name}; "
                                               f"columns: {list_names(c for c in columns if c)}")
    split_sizes(len(labels), val_fraction)
    x = np.stack([np.frombuffer(s.values, dtype=np.float64) for s in used], axis=1)
    return x, y, tuple(s.name for s in used), classes


def _read_header(path: str | Path, reader: Any) -> list[str]:
    for row in reader:
        if row:
            header = cast(list[str], row)
            break
    else:
        raise DataError("task.path", str(path), "is empty; expected a CSV file whose first line is the header")
    names = [c.strip() for c in header]
    if len(header) < 2:
        raise DataError("task.path", str(path), f"the header has one column ({names[0]!r}); expected a "
                                                "comma-separated header naming the target and the features")
    if all(is_number(n) for n in names if n):
        raise DataError("task.path", str(path), f"the first line ({','.join(names)}) looks like data, "
                                                "not a header; add a header line naming the columns")
    seen: set[str] = set()
    for col in names:
        if col and col in seen:
            raise DataError("task.path", str(path), f"the header names column {col!r} twice")
        seen.add(col)
    return header


def _select_columns(path: str | Path, columns: list[str], target: str,
                    features: Sequence[str] | None) -> tuple[list[str], bool]:
    """The feature columns to read and whether the user listed them."""
    name = Path(path).name
    named = [c for c in columns if c]
    if not target or target not in named:
        raise DataError("task.target", target, f"no such column in {name}; columns: {list_names(named)}")
    if features is None:
        return [c for c in named if c != target], False
    if not features:
        raise DataError("task.features", list(features), "is empty; list at least one feature column")
    chosen: list[str] = []
    for col in features:
        if col not in named:
            raise DataError("task.features", col, f"no such column in {name}; columns: {list_names(named)}")
        if col == target:
            raise DataError("task.features", col, "is the target (task.target); a column cannot be both")
        if col in chosen:
            raise DataError("task.features", col, "is listed twice")
        chosen.append(col)
    return chosen, True


def _feature_problem(state: _Column, explicit: bool, name: str) -> str | None:
    """The earliest problem of a feature column (None: fine, or a text column skipped by default)."""
    problems: list[tuple[int, str]] = []
    if state.bad is not None:
        if not explicit:
            return None  # a text column is not a default feature
        line, value = state.bad
        problems.append((line, f"not numeric: {value!r} on line {line} of {name}"))
    if state.empty is not None:
        problems.append((state.empty, f"empty cell on line {state.empty} of {name}; nothing is imputed: fill it "
                                      "in or leave the column out of task.features"))
    if state.nonfinite is not None:
        line, value = state.nonfinite
        problems.append((line, f"non-finite value {value!r} on line {line} of {name}; only finite numbers are "
                               "allowed"))
    return min(problems)[1] if problems else None


def _csv_target(name: str, state: _Column, labels: list[str], kind: str) -> tuple[np.ndarray, tuple[str, ...]]:
    if state.empty is not None:
        raise DataError("task.target", state.name, f"empty cell on line {state.empty} of {name}; "
                                                   "every row needs a target")
    if kind == "regression":
        if state.bad is not None:
            line, value = state.bad
            raise DataError("task.target", state.name,
                            f"not numeric: {value!r} on line {line} of {name}; task.kind='regression' needs "
                            "numbers (use 'classification' for labels)")
        if state.nonfinite is not None:
            line, value = state.nonfinite
            raise DataError("task.target", state.name, f"non-finite value {value!r} on line {line} of {name}; "
                                                       "only finite numbers are allowed")
        return np.frombuffer(state.values, dtype=np.float64).copy(), ()
    if state.bad is None and state.nonfinite is not None:
        line, value = state.nonfinite
        raise DataError("task.target", state.name, f"non-finite label {value!r} on line {line} of {name} "
                                                   "among numeric labels")
    y, classes = encode_labels(labels)
    check_classes("task.target", state.name, name, classes)
    return y, classes
