"""Evaluations per second: one Lightning Trainer per individual against the packed engine, side by side.

Both engines evaluate the same N candidates (genotypes drawn uniformly from the seed's search space, seeds
0..N-1) with the same settings, in this one process, after a warm-up that is not timed (imports, the data,
the first Trainer, cuBLAS):

- lightning: ``train_one`` on each candidate in turn (the seed's engine). On a GPU one Lightning evaluation
  takes seconds, so there ``--lightning-sample K`` (default 5) times only the first K candidates (a random
  sample of the genotypes) and reports K / seconds;
- packed: ``train_pack`` on all N candidates as one pack (``train.pack_size = N``); on CUDA both with and
  without ``train.cuda_graphs`` unless ``--graphs on|off``.

Tasks: ``sinewave`` is the seed's evaluation (10 epochs, 8,000 training samples, batch 64, 1,250 steps);
``fashion_mnist`` is 784 -> ... -> 10 cross-entropy, 1 epoch, batch 64 (937 steps), on Debian's
``dataset-fashion-mnist`` files copied into a temporary directory; ``--train-subset S`` uses only the first
S training images (fewer steps; the validation set stays the 10,000 test images unless ``--val-subset``).

``--repeats R`` alternates the engines R times and keeps each one's best time (the machine may be shared).
Both wall-clock and process CPU seconds are printed; the ratio uses wall-clock.

Usage: ``python tests/bench/packed.py --device cpu|cuda --pack N [--task sinewave|fashion_mnist]``.
The last line is ``ratio=<packed rate / lightning rate>`` (the best packed variant). Targets: >= 100 on a
GPU at a pack of 100 (sinewave), >= 2 on a 2-core CPU at a pack of 5.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from workflow.config import Config, TaskConfig, TrainConfig  # noqa: E402
from workflow.records import Candidate, Result  # noqa: E402
from workflow.trainer.data import load_task, prepare_fashion_mnist_from_debian  # noqa: E402
from workflow.trainer.lightning_engine import train_one  # noqa: E402
from workflow.trainer.packed import train_pack  # noqa: E402


def candidates(n: int, seed: int) -> list[Candidate]:
    space = Config().search_space()
    rng = np.random.default_rng(seed)
    return [Candidate(name=f"bench-{i}", hparams=space.sample(rng), generation=0, index=i, optimizer="ga",
                      seed=i) for i in range(n)]


def task_and_train(args: argparse.Namespace, data_dir: str) -> tuple[TaskConfig, TrainConfig]:
    accelerator = "gpu" if args.device == "cuda" else "cpu"
    if args.task == "sinewave":
        task = TaskConfig(name="sinewave", n_samples=10_000, val_fraction=0.2, n_waves=5)
        epochs = 10
    else:
        prepare_fashion_mnist_from_debian(data_dir)
        task = TaskConfig(name="fashion_mnist", data_dir=data_dir, download=False, target="classification",
                          train_subset=args.train_subset, val_subset=args.val_subset)
        epochs = 1
    train = TrainConfig(epochs=args.epochs or epochs, batch_size=64, learning_rate=1e-3, accelerator=accelerator,
                        num_threads=args.threads, pack_size=args.pack)
    return task, train


def timed(fn: Callable[[], list[Result]]) -> tuple[float, float, list[Result]]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    results = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu, results


def summary(results: Sequence[Result]) -> str:
    ok = [r.fitness for r in results if r.ok]
    if not ok:
        return f"0/{len(results)} ok"
    return (f"{len(ok)}/{len(results)} ok, fitness median {statistics.median(ok):.4g}, "
            f"geometric mean {math.exp(statistics.fmean(math.log(f) for f in ok)):.4g}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--pack", type=int, default=5, help="candidates per pack (N)")
    parser.add_argument("--task", choices=["sinewave", "fashion_mnist"], default="sinewave")
    parser.add_argument("--lightning-sample", type=int, default=None,
                        help="time Lightning on the first K candidates only (default: all N on the CPU, "
                             "at most 5 on CUDA, where one Lightning evaluation takes seconds)")
    parser.add_argument("--graphs", choices=["on", "off", "both"], default="both",
                        help="CUDA graphs for the packed engine (cuda only)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="train.num_threads for both engines")
    parser.add_argument("--epochs", type=int, default=0, help="override the task's epochs (0: 10 / 1)")
    parser.add_argument("--train-subset", type=int, default=None, help="fashion_mnist: first S training images")
    parser.add_argument("--val-subset", type=int, default=None, help="fashion_mnist: first V test images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the genotype draw")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available here")
    warnings.filterwarnings("ignore", message=r".*capturable=True.*")

    with tempfile.TemporaryDirectory(prefix="bench-packed-") as data_dir:
        task, train = task_and_train(args, data_dir)
        cands = candidates(args.pack, args.seed)
        k = args.lightning_sample or (min(5, len(cands)) if args.device == "cuda" else len(cands))
        sample = cands[:k]
        data = load_task(task)
        device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
        print(f"task={args.task} device={args.device} ({device_name}) pack={len(cands)} "
              f"lightning_sample={len(sample)} epochs={train.epochs} n_train={data.n_train} "
              f"n_val={data.n_val} batch={train.batch_size} threads={train.num_threads}")
        for c in cands:
            print(f"  {c.name}: {c.hparams}")

        variants: dict[str, TrainConfig] = {}
        if args.device == "cuda" and args.graphs in ("on", "both"):
            variants["packed+graphs"] = train.model_copy(update={"engine": "packed", "cuda_graphs": True})
        if args.device != "cuda" or args.graphs in ("off", "both"):
            variants["packed"] = train.model_copy(update={"engine": "packed", "cuda_graphs": False})

        # Warm-up (not timed, on a tiny sinewave): the first Trainer, the first pack and graph capture, CUDA's
        # context and cuBLAS.
        tiny = TaskConfig(name="sinewave", n_samples=400)
        train_one(cands[0], tiny, train.model_copy(update={"epochs": 1}))
        for name, config in variants.items():
            try:
                train_pack(cands[: min(len(cands), 2)], tiny, config.model_copy(update={"epochs": 1}),
                           device=args.device)
            except Exception as exc:  # noqa: BLE001 - the timed run reports it
                print(f"  warm-up of {name} failed: {type(exc).__name__}: {exc}", flush=True)

        best: dict[str, tuple[float, float]] = {}
        results: dict[str, list[Result]] = {}
        for repeat in range(args.repeats):
            runs: list[tuple[str, Callable[[], list[Result]]]] = [
                ("lightning", lambda: [train_one(c, task, train) for c in sample])]
            runs += [(name, lambda config=config: train_pack(cands, task, config, device=args.device))
                     for name, config in variants.items()]
            for name, fn in runs:
                try:
                    wall, cpu, out = timed(fn)
                except Exception as exc:  # noqa: BLE001 - report it and go on with the other engines
                    print(f"  repeat {repeat}: {name}: FAILED: {type(exc).__name__}: {exc}", flush=True)
                    traceback.print_exc()
                    continue
                print(f"  repeat {repeat}: {name}: {wall:.2f} s wall, {cpu:.2f} s cpu for {len(out)} evaluations",
                      flush=True)
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu)
                results[name] = out

        rates = {}
        for name, (wall, cpu) in best.items():
            n = len(results[name])
            rates[name] = n / wall
            print(f"{name}: {n / wall:.3f} evaluations/s ({wall / n:.4f} s per evaluation, "
                  f"{cpu / n:.4f} s cpu per evaluation); {summary(results[name])}")
        if "lightning" not in best or not set(variants) & set(best):
            print("ratio=nan")
            sys.exit(1)
        lightning_cpu = best["lightning"][1]
        measured = [name for name in variants if name in best]
        for name in measured:
            wall, cpu = best[name]
            cpu_ratio = (len(results[name]) / cpu) / (len(sample) / lightning_cpu) if cpu > 0 else math.inf
            print(f"{name} / lightning: {rates[name] / rates['lightning']:.2f}x wall-clock, "
                  f"{cpu_ratio:.2f}x cpu time")
        fastest = max(measured, key=lambda name: rates[name])
        print(f"ratio={rates[fastest] / rates['lightning']:.2f}")


if __name__ == "__main__":
    main()
