"""The one pack policy: how many evaluations one task (or one packed model) takes.

With ``train.engine: packed`` a task trains a whole pack as one vectorized model (population-level
parallelism), so a generation needs fewer processes, GPUs and Slurm tasks. ``train.pack_size`` sets the pack
size; 0 picks one: on the local backend a batch is spread over the workers, on Slurm a GPU task takes up to
:data:`GPU_PACK` individuals and a CPU task :data:`CPU_PACK`; inside a task the packed engine trains what it
was given as one pack, at most :data:`GPU_PACK` at a time on a GPU. The packing is deterministic (same batch,
same packs), so a resubmitted pack finds its own checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from workflow.config import TrainConfig
from workflow.records import Candidate

GPU_PACK = 128
CPU_PACK = 8


def pack_size(train: TrainConfig, count: int, *, slots: int | None = None, gpu: bool = False) -> int:
    """Evaluations per task for a batch of ``count``: ``slots`` workers share it, else one task per pack."""
    if train.engine != "packed":
        return 1
    if train.pack_size:
        return train.pack_size
    if slots:
        return max(math.ceil(count / slots), 1)
    return GPU_PACK if gpu else CPU_PACK


def device_pack_size(train: TrainConfig, count: int, *, gpu: bool) -> int:
    """How many of a task's ``count`` evaluations the packed engine trains at once on its device."""
    if train.pack_size:
        return train.pack_size
    return min(count, GPU_PACK) if gpu else max(count, 1)


def make_packs(candidates: Sequence[Candidate], size: int) -> list[list[Candidate]]:
    return [list(candidates[i:i + size]) for i in range(0, len(candidates), size)]
