"""How a batch is cut into tasks: one evaluation per task, or packs of several for the packed engine.

With ``train.engine: packed`` a task trains a whole pack as one vectorized model (population-level
parallelism), so a generation needs fewer processes, GPUs and Slurm tasks. ``train.pack_size`` sets the pack
size; 0 picks one: on the local backend the batch is spread over the workers, on Slurm a GPU task takes up to
128 individuals and a CPU task 8. The packing is deterministic (same batch, same packs), so a resubmitted pack
finds its own checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from workflow.config import Config
from workflow.records import Candidate

GPU_PACK = 128
CPU_PACK = 8


def pack_size(config: Config, count: int, slots: int | None = None, gpu: bool = False) -> int:
    if config.train.engine != "packed":
        return 1
    if config.train.pack_size:
        return config.train.pack_size
    if slots:
        return max(math.ceil(count / slots), 1)
    return GPU_PACK if gpu else CPU_PACK


def make_packs(candidates: Sequence[Candidate], size: int) -> list[list[Candidate]]:
    return [list(candidates[i:i + size]) for i in range(0, len(candidates), size)]


def pack_workdir(run_dir: Path, pack: Sequence[Candidate]) -> Path:
    """``evals/<name>`` for one evaluation; ``evals/pack-<first>--<last>`` for a pack."""
    if len(pack) == 1:
        return Path(run_dir) / "evals" / pack[0].name
    return Path(run_dir) / "evals" / f"pack-{pack[0].name}--{pack[-1].name}"
