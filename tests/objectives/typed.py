"""A cheap objective over the typed-genes space of ``configs/typed_genes.yaml`` (a layers gene, categoricals, a log
float, a log int): smooth in every gene, so searches over it behave as over a real training, at no cost."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def typed_landscape(hparams: Mapping[str, Any], context: object) -> float:
    layers = hparams["layers"]
    widths = [int(w) for w in (layers.split("-") if isinstance(layers, str) else layers)]
    shape = abs(len(widths) - 2) + sum(abs(w - 64) for w in widths) / 64
    rates = abs(math.log10(float(hparams["learning_rate"])) + 2.5) + abs(math.log2(int(hparams["batch_size"])) - 6) / 4
    choices = 0.5 * (hparams["activation"] != "tanh") + 0.5 * (hparams["optimizer"] not in ("adam", "adamw"))
    return shape + rates + choices + float(hparams["dropout"])
