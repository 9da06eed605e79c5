"""A callable objective (``objective.kind: callable``): a function handed to :func:`workflow.search` in Python.

It may be defined anywhere (a script, a notebook cell, ``__main__``, a closure): cloudpickle writes it by value
into ``RUN_DIR/objective.pkl`` (as submitit pickles the functions it submits), and every process that evaluates
it (a local worker, a Slurm task, a driver resumed later) loads it from there. In the process that called
``search`` the function itself is used (:func:`register`), so the inline backend calls it directly, pickled or
not.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The pickled function, in the run directory.
OBJECTIVE_PICKLE = "objective.pkl"

Objective = Callable[[dict[str, Any], Any], object]

#: Functions of this process, by the absolute path of their pickle (whether or not it was written).
_REGISTERED: dict[str, Objective] = {}
#: Functions loaded from a pickle, by path, with the file's mtime (a worker loads each once).
_LOADED: dict[str, tuple[float, Objective]] = {}


class PickleError(ValueError):
    """The callable cannot be pickled or loaded: one line saying why."""


def describe(function: Objective) -> str:
    """``module:qualname`` of a function, for people (``objective.function`` of a callable run)."""
    module = getattr(function, "__module__", None) or "?"
    name = getattr(function, "__qualname__", None) or type(function).__name__
    return f"{module}:{name}"


def check_signature(function: Objective) -> None:
    """The function can be called as ``function(hparams, context)``."""
    if not callable(function):
        raise PickleError(f"the objective is a {type(function).__name__}, not a function")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a builtin: nothing to check ahead
    try:
        signature.bind({}, None)
    except TypeError:
        params = signature.replace(return_annotation=inspect.Signature.empty)
        raise PickleError(f"the objective {describe(function)} takes {params} but is called as "
                          "function(hparams, context)") from None


def dumps(function: Objective) -> bytes:
    """The function pickled by value where it must be (raises :class:`PickleError` naming what failed)."""
    import cloudpickle

    module = sys.modules.get(getattr(function, "__module__", "") or "")
    by_value = module is not None and _is_users_module(module)
    if by_value:  # a module of the user's that a worker may not be able to import: its code travels along
        cloudpickle.register_pickle_by_value(module)
    try:
        return bytes(cloudpickle.dumps(function))
    except Exception as exc:  # noqa: BLE001 - whatever cloudpickle meets (a lock, a socket, a generator)
        raise PickleError(f"the objective {describe(function)} cannot be pickled for worker processes "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); define what it "
                          "uses inside it, or use backend inline") from None
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)


def _is_users_module(module: Any) -> bool:
    """A module of the user's own files (not ``__main__``, which cloudpickle already takes by value; not an
    installed package, nor this one)."""
    name, file = module.__name__, getattr(module, "__file__", None)
    if name == "__main__" or not file or name.split(".")[0] == "workflow":
        return False
    path = os.path.realpath(file)
    return not any(part in ("site-packages", "dist-packages") for part in Path(path).parts) \
        and not path.startswith(os.path.realpath(sys.base_prefix))


def register(path: Path, function: Objective) -> None:
    """Use ``function`` itself for the run whose pickle is ``path`` in this process."""
    _REGISTERED[str(Path(path).resolve())] = function


def registered(path: Path) -> Objective | None:
    return _REGISTERED.get(str(Path(path).resolve()))


def load(path: Path | str) -> Objective:
    """The run's function: the one registered in this process, else loaded from ``path`` (once per process)."""
    key = str(Path(path).resolve())
    if key in _REGISTERED:
        return _REGISTERED[key]
    try:
        mtime = os.stat(key).st_mtime
    except OSError:
        raise PickleError(f"{key}: no pickled objective; this run's objective is a Python callable that was not "
                          "saved: continue it from Python with workflow.load(run_dir).resume(objective=...)") from None
    cached = _LOADED.get(key)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    import cloudpickle

    try:
        with open(key, "rb") as handle:
            function = cloudpickle.load(handle)
    except Exception as exc:  # noqa: BLE001 - a module it refers to is missing here, a version mismatch
        raise PickleError(f"{key}: cannot load the pickled objective ({type(exc).__name__}: {exc})") from None
    _LOADED[key] = (mtime, function)
    return function
