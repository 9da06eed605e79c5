"""The seed's engine: one PyTorch Lightning ``Trainer`` per individual.

Per-step overhead is what matters for the seed's tiny MLPs (1,250 steps of a few microseconds of maths),
so everything Lightning does per step that we do not need is off: no progress bar, no per-step ``self.log``
(losses are summed in a tensor and logged once per epoch), batches are drawn by indexing the in-memory
tensors with a whole index tensor (no per-sample ``__getitem__`` and collate), one validation pass per
epoch in large batches, no logger or checkpoint unless a work directory is given.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.environments import ClusterEnvironment, LightningEnvironment, SLURMEnvironment
from pytorch_lightning.accelerators import CPUAccelerator
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual torch alias
from torch.utils.data import DataLoader, TensorDataset

from workflow.config import ObjectiveConfig, TaskConfig, TrainConfig
from workflow.records import Candidate, Result
from workflow.tracking.evaluation import EvaluationTracker, tracked_evaluation
from workflow.tracking.spec import TrackingSpec
from workflow.trainer.common import EVAL_BATCH_SIZE, Settings, fitness_metric, make_optimizer, metrics_result
from workflow.trainer.cost import mlp_cost
from workflow.trainer.data import TaskData, load_task
from workflow.trainer.model import Architecture, build_mlp
from workflow.trainer.torch_env import cpu_cuda_probe

log = logging.getLogger(__name__)

# Lightning's info lines (GPU/TPU available, LOCAL_RANK, "max_epochs reached", "Seed set to") would repeat for
# every individual; warnings still come through.
for _name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_name).setLevel(logging.WARNING)

#: Warnings that say nothing about an evaluation: num_workers=0 is deliberate (the data are in memory), a GPU
#: left unused is the configuration's choice, Lightning 2.6 trips over torch 2.14's pytree deprecation, and
#: the cluster environment is chosen here (:func:`_cluster_environment`), not by how the process started, and
#: a work directory holding a checkpoint is how a requeued evaluation resumes.
_QUIET_WARNINGS = (
    r".*does not have many workers.*",
    r".*GPU available but not used.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*The number of training batches .* is smaller than the logging interval.*",
    r".*The `srun` command is available on your system but is not used.*",
    r".*Checkpoint directory .* exists and is not empty.*",
)


def _quiet_warnings() -> None:
    for pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


class IndexBatches:
    """A sampler yielding whole batches of indices as one tensor, reshuffled every epoch.

    Used with ``DataLoader(TensorDataset(...), sampler=IndexBatches(...), batch_size=None)`` so a batch is two
    tensor-indexing operations instead of ``batch_size`` ``__getitem__`` calls and a collate. Under DDP each of
    ``world_size`` ranks draws the same permutation (same ``seed``) and keeps its own stride, truncated so all
    ranks run the same number of steps.
    """

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
        self.per_rank = n // world_size if world_size > 1 else n

    def __len__(self) -> int:
        return -(-self.per_rank // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        if self.world_size > 1:
            order = order[: self.per_rank * self.world_size][self.rank :: self.world_size]
        return iter(order.split(self.batch_size))


class MLPModule(pl.LightningModule):
    """An MLP trained on a :class:`TaskData` as ``settings`` say; logs train_loss, val_loss and val_mse or val_acc.

    All metrics are epoch means: ``train_loss`` over the epoch's batches (while dropout is active),
    ``val_*`` over the whole validation set, computed on every rank (so no validation sharding is needed).
    """

    def __init__(self, net: nn.Module, data: TaskData, *, settings: Settings, seed: int,
                 num_threads: int = 1) -> None:
        super().__init__()
        self.net = net
        self.data = data
        self.settings = settings
        self.batch_size = settings.batch_size
        self.seed = seed
        self.num_threads = num_threads
        self.kind = data.kind
        self._train_sum = torch.zeros(())
        self._train_batches = 0
        self._val_sum = torch.zeros(())
        self._val_correct = torch.zeros(())
        self._val_count = 0

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets `_current_fx_name` twice around every hook call (a dozen hooks per step), and
        # nn.Module.__setattr__'s parameter/module/buffer checks made that about 8% of a seed evaluation.
        # For a plain string attribute, object.__setattr__ is what nn.Module ends up doing anyway.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _loss(self, out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        if self.kind == "regression":
            return F.mse_loss(out, y, reduction=reduction)
        return F.cross_entropy(out, y, reduction=reduction)

    def setup(self, stage: str) -> None:
        # DDP ranks started by ddp_spawn inherit neither train_one's warning filters nor its thread count
        # (Lightning sets cpu_count / ranks threads there).
        _quiet_warnings()
        torch.set_num_threads(self.num_threads)

    # --- data: built here, after the strategy moved the model and knows this process's rank
    def train_dataloader(self) -> DataLoader[Any]:
        sampler = IndexBatches(self.data.n_train, self.batch_size, shuffle=True, seed=self.seed,
                               rank=self.global_rank, world_size=self.trainer.world_size)
        return DataLoader(self._on_device(self.data.train_x, self.data.train_y), sampler=sampler, batch_size=None)

    def val_dataloader(self) -> DataLoader[Any]:
        sampler = IndexBatches(self.data.n_val, EVAL_BATCH_SIZE, shuffle=False)
        return DataLoader(self._on_device(self.data.val_x, self.data.val_y), sampler=sampler, batch_size=None)

    def _on_device(self, x: torch.Tensor, y: torch.Tensor) -> TensorDataset:
        # On a GPU the whole (small) dataset goes over once, not one batch copy per step.
        return TensorDataset(x.to(self.device), y.to(self.device))

    # --- training
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.parameters(), self.settings)

    def on_train_epoch_start(self) -> None:
        self._train_sum = torch.zeros((), device=self.device)
        self._train_batches = 0

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self._loss(self.net(x), y)
        self._train_sum += loss.detach()
        self._train_batches += 1
        return loss

    # --- validation
    def on_validation_epoch_start(self) -> None:
        self._val_sum = torch.zeros((), device=self.device)
        self._val_correct = torch.zeros((), device=self.device)
        self._val_count = 0

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        out = self.net(x)
        self._val_sum += self._loss(out, y, reduction="sum")
        if self.kind == "classification":
            self._val_correct += (out.argmax(dim=1) == y).sum()
        self._val_count += int(y.numel())

    def on_validation_epoch_end(self) -> None:
        count = max(self._val_count, 1)
        # Every rank validated the full set with the same weights, so the sync (DDP only) changes nothing;
        # it keeps Lightning from warning about epoch-level metrics logged without it.
        sync = self.trainer.world_size > 1
        val_loss = self._val_sum / count
        self.log("val_loss", val_loss, sync_dist=sync)
        if self.kind == "regression":
            self.log("val_mse", val_loss, sync_dist=sync)
        else:
            self.log("val_acc", self._val_correct / count, sync_dist=sync)
        if self.trainer.state.fn == "fit":
            # Validation runs after the epoch's last training step, so the training mean is complete here;
            # logging it now puts one row per epoch in metrics.csv.
            self.log("train_loss", self._train_sum / max(self._train_batches, 1), sync_dist=sync)
            self.log("epochs", float(self.current_epoch + 1), sync_dist=sync)
            if not torch.isfinite(val_loss):
                self.trainer.should_stop = True  # diverged: more epochs cannot make it finite again


class _TrackingCallback(Callback):
    """Each epoch's metrics (train and validation means) to the evaluation's W&B run, from rank zero."""

    def __init__(self, tracker: EvaluationTracker) -> None:
        self.tracker: EvaluationTracker | None = tracker

    def __getstate__(self) -> dict[str, Any]:
        # A W&B run cannot cross into ddp_spawn's processes: there, only the final summary is logged.
        return {**self.__dict__, "tracker": None}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # In Lightning 2 the epoch's validation has run by now, so callback_metrics holds its val_* values.
        if self.tracker is not None and trainer.is_global_zero:
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
            self.tracker.log_epoch(metrics, trainer.current_epoch + 1)


class _ReleaseProcessGroup(Callback):
    """Destroys a ddp_spawn rank's gloo process group when its fit or validation ends.

    Lightning destroys only NCCL groups (at exit); a gloo group left alive when a spawned rank's interpreter
    exits can abort it ("terminate called without an active exception", seen about once in 40 CPU DDP runs),
    which fails the whole evaluation after it trained. The main process of ddp_spawn never joins the group,
    so nothing uses it after the spawned ranks tear down.
    """

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def train_one(candidate: Candidate, task: TaskConfig, train: TrainConfig, workdir: Path | None = None,
              tracking: TrackingSpec | None = None, objective: ObjectiveConfig | None = None) -> Result:
    """Train ``candidate``'s MLP on ``task`` and return its fitness: the validation loss after the last epoch.

    The fitness is ``val_mse`` for regression tasks and ``val_loss`` (cross-entropy) for classification,
    measured after the last epoch run (``train.epochs``, or fewer with early stopping). A non-finite loss
    gives a failed :class:`Result`; any other error propagates.

    Reproducible: the same candidate (hyperparameters and ``seed``) and configuration give the same fitness
    in any process (weights, dropout and batch order all derive from ``candidate.seed``).

    With ``workdir``, Lightning writes ``logs/version_<n>/metrics.csv`` (one row per epoch, a new version per
    call) and ``checkpoints/last.ckpt`` (after every epoch) there, and a later call with the same ``workdir``
    resumes from that checkpoint (e.g. after a Slurm requeue); the batch order after a resume differs from an
    uninterrupted run's. Resuming a finished run only re-validates the saved weights.

    With ``tracking``, the evaluation logs to its W&B run (see :mod:`workflow.tracking`): per-epoch metrics
    and the result as summary. W&B trouble is logged and never changes the result.
    """
    with tracked_evaluation(tracking, candidate, task, train) as tracker:
        result = _train(candidate, task, train, workdir, tracker, objective)
        tracker.set_result(result)
    return result


def _usable_checkpoint(path: Path) -> bool:
    """Whether ``path`` holds a loadable checkpoint.

    Lightning writes checkpoints in place, so a task killed mid-write (time limit, preemption) can leave a
    truncated file; such a file is set aside and the evaluation starts over instead of failing.
    """
    if not path.is_file():
        return False
    try:
        torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is unusable
        log.warning("checkpoint %s is unreadable (%s); starting this evaluation over", path, exc)
        path.rename(path.with_suffix(".ckpt.unreadable"))
        return False
    return True


def _train(candidate: Candidate, task: TaskConfig, train: TrainConfig, workdir: Path | None,
           tracker: EvaluationTracker, objective: ObjectiveConfig | None) -> Result:
    start = time.monotonic()
    data = load_task(task)
    seed = candidate.seed % 2**32  # Lightning replaces out-of-range seeds with a random one
    pl.seed_everything(seed, workers=True, verbose=False)
    torch.set_num_threads(train.num_threads)
    settings = Settings.of(candidate.hparams, train)
    arch = Architecture.of(candidate.hparams)
    net = build_mlp(arch, data.n_inputs, data.n_outputs)
    module = MLPModule(net, data, settings=settings, seed=seed,
                       num_threads=train.num_threads)
    metric = fitness_metric(data.kind)
    steps_per_epoch = len(IndexBatches(data.n_train, settings.batch_size, shuffle=False))

    callbacks: list[Callback] = [_TrackingCallback(tracker)] if tracker.active else []
    strategy = _strategy(train)
    if strategy == "ddp_spawn":
        callbacks.append(_ReleaseProcessGroup())
    if train.early_stopping_patience > 0:
        callbacks.append(EarlyStopping(monitor=metric, mode="min", patience=train.early_stopping_patience))
    ckpt_path: str | None = None
    if workdir is not None:
        workdir = Path(workdir)
        ckpt_dir = workdir / "checkpoints"
        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1,
                                         enable_version_counter=False))
        if _usable_checkpoint(ckpt_dir / "last.ckpt"):
            ckpt_path = str(ckpt_dir / "last.ckpt")

    with warnings.catch_warnings():
        _quiet_warnings()
        trainer = pl.Trainer(
            accelerator=train.accelerator,
            devices=train.devices,
            strategy=strategy,
            plugins=[_cluster_environment(train)],
            max_epochs=train.epochs,
            logger=CSVLogger(workdir, name="logs") if workdir is not None else False,
            callbacks=callbacks,
            enable_checkpointing=workdir is not None,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=max(1, steps_per_epoch),
            use_distributed_sampler=False,  # IndexBatches shards by rank itself
            default_root_dir=str(workdir) if workdir is not None else None,
        )
        with cpu_cuda_probe(isinstance(trainer.accelerator, CPUAccelerator)):
            fit_start = time.monotonic()
            trainer.fit(module, ckpt_path=ckpt_path)
            train_seconds = time.monotonic() - fit_start
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
            if metric not in metrics:
                # Resumed from the checkpoint of a finished run: fit had nothing left to do.
                trainer.validate(module, verbose=False)
                metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
                metrics.setdefault("epochs", float(trainer.current_epoch))
    device = next(net.parameters()).device  # where it trained (ddp_spawn: the parent's copy, on the cpu)
    metrics.update(mlp_cost(arch, data.n_inputs, data.n_outputs, device, train_seconds, net=net))
    return metrics_result(candidate.name, data.kind, metrics, time.monotonic() - start, objective)


def _strategy(train: TrainConfig) -> str:
    """Lightning's strategy for ``train``: one device needs none; several mean DDP.

    ``auto`` with several devices picks ``ddp`` only when Slurm already started one task per device
    (``srun``); otherwise ``ddp_spawn``, because plain ``ddp`` would start the other ranks by re-running this
    process's command line, which in a backend's worker process is not a training script.
    """
    if train.devices == 1:
        return "auto"
    if train.strategy != "auto":
        return train.strategy
    return "ddp" if _slurm_tasks() == train.devices else "ddp_spawn"


def _cluster_environment(train: TrainConfig) -> ClusterEnvironment:
    """Slurm's environment only when srun started exactly one task per device for this evaluation.

    Otherwise (one device, or e.g. an MPI island job whose tasks are islands, not ranks of this model)
    Lightning must not read SLURM_NTASKS as its world size; the backend, not Lightning, handles requeues.
    """
    if train.devices > 1 and _slurm_tasks() == train.devices:
        return SLURMEnvironment(auto_requeue=False)
    return LightningEnvironment()


def _slurm_tasks() -> int:
    if os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive"):
        return 0
    try:
        return int(os.environ.get("SLURM_NTASKS", "0"))
    except ValueError:
        return 0
