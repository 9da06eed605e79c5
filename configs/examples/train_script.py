"""A training script of your own, tuned by gaslurm as a command objective (no gaslurm import needed).

gaslurm runs it once per evaluation, without a shell, with the genes filled into its argument list
(configs/examples/command_objective.yaml). It prints its metrics as one JSON line at the end (or writes
``<workdir>/metrics.json``). It checkpoints into ``--out`` (the evaluation's workdir) after every epoch, so a
run cut by a Slurm time limit continues on the next attempt (gaslurm sends SIGTERM, then SIGKILL after
``objective.grace_s``). Also readable from the environment: GASLURM_EVAL_NAME, GASLURM_WORKDIR, GASLURM_SEED,
GASLURM_ATTEMPT.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--degree", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rng = random.Random(int(os.environ.get("GASLURM_SEED", "0")))
    # Fit y = exp(x) on [0, 1] with a polynomial of the given degree by gradient descent.
    xs = [i / 99 for i in range(100)]
    ys = [math.exp(x) for x in xs]
    state_file = args.out / "state.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
    else:
        state = {"epoch": 0, "coefficients": [rng.uniform(-0.1, 0.1) for _ in range(args.degree + 1)]}
    coefficients = state["coefficients"]
    loss = math.inf
    for epoch in range(state["epoch"], args.epochs):
        grads = [0.0] * len(coefficients)
        loss = 0.0
        for x, y in zip(xs, ys):
            error = sum(c * x**k for k, c in enumerate(coefficients)) - y
            loss += error * error / len(xs)
            for k in range(len(coefficients)):
                grads[k] += 2 * error * x**k / len(xs)
        coefficients = [c - args.lr * g for c, g in zip(coefficients, grads)]
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"epoch": epoch + 1, "coefficients": coefficients}))
        tmp.replace(state_file)
    print(json.dumps({"val_loss": loss, "attempt": int(os.environ.get("GASLURM_ATTEMPT", "0"))}))


if __name__ == "__main__":
    main()
