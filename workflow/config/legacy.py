"""Keys of earlier versions, translated to today's so old configs and old run directories keep working.

Version 0.1 kept every optimizer's settings flat in ``optimizer`` (``optimizer.tournament_size``,
``optimizer.bo_initial_points``, ...); they now live in ``optimizer.ga`` and ``optimizer.bo``, so that the
GA's rules bind only the GA. An old key is moved to its new place; giving both the old and the new key is an
error naming the new one.

Version 0.1's space was the seed's four genes as bounds (``space.n_layers: [1, 5]``, ``space.hidden_size``,
``space.dropout``, ``space.activation_tree``) with their mutation steps in ``optimizer.mutation`` and the tree's
base in ``optimizer.activation_base``; they become typed genes (``space.n_layers: {type: int, low: 1, high: 5,
step: 2}``, ...). A ``[low, high]`` pair for one of those genes is still read that way, in files and overrides.

Config version 2 (a top-level ``version: 2``) made an int gene's (and a layers gene's) ``step`` a grid, as
Optuna's ``suggest_int(step=...)``; the GA's mutation width became ``mutation_step``. A config without
``version`` (or ``version: 1``) was written before: its ``step`` is the mutation width, and is moved to
``mutation_step`` (the grid stays 1), so old configs and the ``config.yaml`` of old run directories search
exactly as they did. A gene of such a config that already names ``mutation_step`` is read as version 2 (its
``step`` is a grid): that key did not exist before. Upgraded configs say ``version: 2``.
"""

from __future__ import annotations

import copy
from typing import Any

from workflow.errors import ConfigError

#: Old ``optimizer.<key>`` -> (section, new key).
MOVED_OPTIMIZER_KEYS: dict[str, tuple[str, str]] = {
    "tournament_size": ("ga", "tournament_size"),
    "crossover_prob": ("ga", "crossover_prob"),
    "mutation_prob": ("ga", "mutation_prob"),
    "elitism": ("ga", "elitism"),
    "activation_base": ("ga", "activation_base"),
    "bound_handling": ("ga", "bound_handling"),
    "mutation": ("ga", "mutation"),
    "bo_initial_points": ("bo", "initial_points"),
    "bo_acq_func": ("bo", "acq_func"),
    "bo_base_estimator": ("bo", "base_estimator"),
    # Not old, short: the surrogate's keys read naturally at the top of the optimizer section too.
    "surrogate": ("ga", "surrogate"),
    "oversample": ("ga", "oversample"),
    "random_share": ("ga", "random_share"),
}


def current_key(parts: list[str]) -> list[str]:
    """Where an override's dotted key lives now (an override of an old key sets the new one)."""
    if len(parts) >= 2 and parts[0] == "optimizer" and parts[1] in MOVED_OPTIMIZER_KEYS:
        section, new = MOVED_OPTIMIZER_KEYS[parts[1]]
        return ["optimizer", section, new, *parts[2:]]
    return parts


#: The config format this version writes (see the module's docstring).
CONFIG_VERSION = 2
#: Gene types whose ``step`` meant the mutation width before version 2.
STEPPED_TYPES = ("int", "layers")

#: Version 0.1's bounds, mutation steps and tree base of the seed's genes (its defaults).
SEED_BOUNDS: dict[str, tuple[float, float]] = {"n_layers": (1, 5), "hidden_size": (16, 128), "dropout": (0.0, 0.5)}
SEED_STEPS: dict[str, tuple[str, str, float]] = {"n_layers": ("mutation_step", "n_layers_step", 2),
                                                 "hidden_size": ("mutation_step", "hidden_size_step", 16),
                                                 "dropout": ("sigma", "dropout_sigma", 0.15)}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with every old key moved to where it lives now."""
    data = _upgrade_optimizer(data)
    data = _upgrade_steps(data)
    return _upgrade_space(data)


def _upgrade_steps(data: dict[str, Any]) -> dict[str, Any]:
    """Before version 2, ``step`` of an int or layers gene was the mutation width: moved to ``mutation_step``."""
    version = data.get("version")
    if version == CONFIG_VERSION:
        return data
    if version not in (None, 1):
        raise ConfigError("version", version, f"must be 1 or {CONFIG_VERSION} (absent: 1)")
    data = copy.deepcopy(data)
    data["version"] = CONFIG_VERSION
    space = data.get("space")
    if isinstance(space, dict):
        for gene in space.values():
            if (isinstance(gene, dict) and gene.get("type") in STEPPED_TYPES and "step" in gene
                    and "mutation_step" not in gene):
                gene["mutation_step"] = gene.pop("step")
    return data


def _upgrade_optimizer(data: dict[str, Any]) -> dict[str, Any]:
    optimizer = data.get("optimizer")
    if not isinstance(optimizer, dict) or not MOVED_OPTIMIZER_KEYS.keys() & optimizer.keys():
        return data
    data = copy.deepcopy(data)
    optimizer = data["optimizer"]
    for old, (section, new) in MOVED_OPTIMIZER_KEYS.items():
        if old not in optimizer:
            continue
        target = optimizer.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"optimizer.{section}", target, "must be a section (a mapping)")
        if new in target:
            raise ConfigError(f"optimizer.{old}", optimizer[old],
                              f"moved to optimizer.{section}.{new}, which is also given; keep only that one")
        target[new] = optimizer.pop(old)
    return data


def _pair(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2


def _old_space(space: Any) -> bool:
    """Whether ``space`` has an entry in version 0.1's form (a bounds pair, or the activation tree)."""
    return isinstance(space, dict) and ("activation_tree" in space or any(
        name in SEED_BOUNDS and _pair(value) for name, value in space.items()))


def _typed(name: str, pair: Any, mutation: Any) -> dict[str, Any]:
    field, key, default = SEED_STEPS[name]
    step = mutation.get(key, default) if isinstance(mutation, dict) else default
    return {"type": "float" if name == "dropout" else "int", "low": pair[0], "high": pair[1], field: step}


def _upgrade_space(data: dict[str, Any]) -> dict[str, Any]:
    optimizer = data.get("optimizer")
    ga = optimizer.get("ga") if isinstance(optimizer, dict) else None
    ga = ga if isinstance(ga, dict) else {}
    space = data.get("space")
    legacy_ga = sorted({"mutation", "activation_base"} & ga.keys())
    if not _old_space(space) and not legacy_ga:
        return data
    pure_old = space is None or all(k == "activation_tree" or (k in SEED_BOUNDS and _pair(v))
                                    for k, v in space.items())
    if legacy_ga and not pure_old:
        raise ConfigError(f"optimizer.ga.{legacy_ga[0]}", ga[legacy_ga[0]],
                          "moved into each gene of space (step, sigma, base); set it there")
    data = copy.deepcopy(data)
    ga = data["optimizer"]["ga"] if legacy_ga else {}
    mutation = ga.pop("mutation", None) or {}
    base = ga.pop("activation_base", 2.0)
    old = dict(data.get("space") or {})
    if pure_old:
        # Version 0.1's chromosome, in its fixed order, whatever order the file listed the bounds in.
        from workflow.space.tree import DEFAULT_ACTIVATION_TREE

        tree = old.get("activation_tree", DEFAULT_ACTIVATION_TREE)
        data["space"] = {
            "n_layers": _typed("n_layers", old.get("n_layers", SEED_BOUNDS["n_layers"]), mutation),
            "hidden_size": _typed("hidden_size", old.get("hidden_size", SEED_BOUNDS["hidden_size"]), mutation),
            "activation": {"type": "categorical", "tree": tree, "base": base},
            "dropout": _typed("dropout", old.get("dropout", SEED_BOUNDS["dropout"]), mutation),
        }
        return data
    if "activation_tree" in old:
        raise ConfigError("space.activation_tree", old["activation_tree"],
                          "moved to the activation gene: space.activation.tree")
    # Today's genes with a 0.1-style [low, high] pair among them (e.g. an override): converted in place.
    data["space"] = {name: _typed(name, value, {}) if name in SEED_BOUNDS and _pair(value) else value
                     for name, value in old.items()}
    return data
