"""The packed engine: a whole pack of individuals trained at once, as one vectorized model on one device.

Tiny MLPs leave a device idle: per step, a per-individual engine spends far more time in Python, Lightning
hooks and kernel launches than in arithmetic. Here P individuals with different genotypes (depth, width,
activation, dropout) become one :class:`PackedMLP` whose every layer is one batched matrix product over the
members, and one optimizer step updates them all. Each member is trained exactly as it would be alone (up
to float rounding), from the same initial weights:

- widths: every hidden layer is padded to the widest member (``H``); padded weights start at zero, padded
  units stay exactly zero (masked where ``act(0) != 0``) and get exactly zero gradients, so Adam never moves
  them;
- depths: members are ordered by depth (deepest first), so the members that have a layer ``l`` are a prefix
  of the pack and layer ``l`` holds parameters for that prefix only; the others' hidden states pass through
  unchanged and the output layer reads each member's state after its own last layer;
- activations: members are also ordered by activation within a depth, so each activation is applied to
  contiguous slices (views) of a layer's pre-activations, never to another member's values;
- dropout: one Bernoulli mask per layer with each member's own keep probability, scaled by ``1/(1-p)`` like
  ``nn.Dropout`` (a member with ``p = 0`` is multiplied by exactly 1);
- loss: the sum over members of each member's own mean loss, so each member's gradient is its own;
- optimizer: one ``torch.optim.Adam`` (fused, like the Lightning engine's) over the packed tensors; Adam is
  elementwise, so each member's moments and updates are its own.

What differs from training alone: all members of a pack see the same batch order (one shuffle per pack,
seeded with the first candidate's seed) and one dropout random stream. A pack of one reproduces
:func:`~workflow.trainer.lightning_engine.train_one`'s batch order and initial weights exactly. See
``docs/packed.md`` for the design and measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from workflow.config import ObjectiveConfig, TaskConfig, TrainConfig
from workflow.packing import device_pack_size
from workflow.records import Candidate, Result
from workflow.tracking.evaluation import tracked_evaluation
from workflow.tracking.spec import TrackingSpec
from workflow.trainer.common import Settings
from workflow.trainer.data import TaskData, load_task
from workflow.trainer.packed.loop import Pack, train_step, validate
from workflow.trainer.packed.model import PackedMLP
from workflow.trainer.packed.optim import adam_step, make_optimizer, select_members
from workflow.trainer.torch_env import cpu_cuda_probe

__all__ = ["PackedMLP", "adam_step", "make_optimizer", "resolve_device", "select_members", "train_pack",
           "train_step", "validate"]

CHECKPOINT_NAME = "packed.ckpt"


def resolve_device(train: TrainConfig, device: str | None = None) -> torch.device:
    """``device`` if given, else ``train.accelerator`` (``auto``: CUDA when available, like Lightning)."""
    if device is not None:
        return torch.device(device)
    if train.accelerator == "cpu":
        return torch.device("cpu")
    if train.accelerator == "gpu" or torch.cuda.is_available():
        if not torch.cuda.is_available():
            raise RuntimeError("train.accelerator='gpu' but CUDA is not available here")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def train_pack(candidates: Sequence[Candidate], task: TaskConfig, train: TrainConfig, workdir: Path | None = None,
               device: str | None = None, tracking: TrackingSpec | None = None,
               objective: ObjectiveConfig | None = None) -> list[Result]:
    """Train ``candidates`` together, in packs, and return one :class:`Result` per candidate, in order.

    Each member's fitness and metrics are defined as in :func:`~workflow.trainer.lightning_engine.train_one`
    (``val_mse`` or ``val_loss`` after the member's last epoch; ``train_loss`` the epoch's mean batch loss;
    early stopping per member). A member with a non-finite validation loss fails alone; the others go on.
    ``Result.seconds`` is the pack's training time divided by its size (the amortised cost per evaluation).

    With ``workdir``, each pack writes ``packed.ckpt`` there (``packed-<i>.ckpt`` for the ``i``-th pack when
    there are several) after every epoch, and a later call with the same candidates continues from it (e.g.
    after a Slurm requeue) with the same batch order and dropout draws an uninterrupted run would have used.

    With ``tracking``, each member gets its own W&B run (as with the Lightning engine: one per evaluation),
    written when its pack has finished: its per-epoch rows, then its result as summary (W&B keeps one run
    open per process, so the members' runs cannot be open side by side during training).
    """
    if not candidates:
        return []
    dev = resolve_device(train, device)
    data = load_task(task)
    torch.set_num_threads(train.num_threads)
    chunks = [chunk for group in _by_settings(candidates, train)
              for size in [device_pack_size(train, len(group), gpu=dev.type == "cuda")]
              for chunk in (group[i:i + size] for i in range(0, len(group), size))]
    results: dict[str, Result] = {}
    for i, chunk in enumerate(chunks):
        checkpoint = None
        if workdir is not None:
            checkpoint = Path(workdir) / (CHECKPOINT_NAME if len(chunks) == 1 else f"packed-{i}.ckpt")
        results.update((r.name, r) for r in _train_chunk(chunk, task, data, train, dev, checkpoint, tracking,
                                                         objective))
    return [results[c.name] for c in candidates]


def _by_settings(candidates: Sequence[Candidate], train: TrainConfig) -> list[list[Candidate]]:
    """Candidates grouped by how they train (optimizer, batch size, learning rate, weight decay), in order of
    first appearance: one pack trains with one optimizer and one batch order."""
    groups: dict[Settings, list[Candidate]] = {}
    for candidate in candidates:
        groups.setdefault(Settings.of(candidate.hparams, train), []).append(candidate)
    return list(groups.values())


def _train_chunk(candidates: Sequence[Candidate], task: TaskConfig, data: TaskData, train: TrainConfig,
                 device: torch.device, checkpoint: Path | None, tracking: TrackingSpec | None,
                 objective: ObjectiveConfig | None) -> list[Result]:
    pack: Pack | None = None
    try:
        with cpu_cuda_probe(device.type == "cpu"):
            pack = Pack(candidates, data, train, device, objective)
            if checkpoint is not None and checkpoint.is_file():
                pack.load(checkpoint)
            pack.run(checkpoint)
        results = pack.results()
    except BaseException as exc:
        if tracking is not None:
            reason = f"{type(exc).__name__}: {exc}"
            _track(tracking, candidates, task, train, pack, [Result.failure(c.name, reason) for c in candidates])
        raise
    if tracking is not None:
        _track(tracking, candidates, task, train, pack, results)
    return results


def _track(tracking: TrackingSpec, candidates: Sequence[Candidate], task: TaskConfig, train: TrainConfig,
           pack: Pack | None, results: Sequence[Result]) -> None:
    """Each member's W&B run, after the pack trained: its epochs replayed from the pack's history, then its
    result. One after another, since wandb has one run open per process; a pack that raised gives every
    member the failure (and the epochs it got through)."""
    for k, (candidate, result) in enumerate(zip(candidates, results)):
        with tracked_evaluation(tracking, candidate, task, train) as tracker:
            for row in pack.history[k] if pack is not None else []:
                tracker.log_epoch(row, int(row["epochs"]))
            tracker.set_result(result)
