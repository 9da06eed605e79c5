"""Keys of earlier versions, translated to today's so old configs and old run directories keep working.

Version 0.1 kept every optimizer's settings flat in ``optimizer`` (``optimizer.tournament_size``,
``optimizer.bo_initial_points``, ...); they now live in ``optimizer.ga`` and ``optimizer.bo``, so that the
GA's rules bind only the GA. An old key is moved to its new place; giving both the old and the new key is an
error naming the new one.
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
}


def current_key(parts: list[str]) -> list[str]:
    """Where an override's dotted key lives now (an override of an old key sets the new one)."""
    if len(parts) >= 2 and parts[0] == "optimizer" and parts[1] in MOVED_OPTIMIZER_KEYS:
        section, new = MOVED_OPTIMIZER_KEYS[parts[1]]
        return ["optimizer", section, new, *parts[2:]]
    return parts


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with every old key moved to where it lives now."""
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
