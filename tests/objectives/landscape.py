"""Cheap objectives for tests, called through the Python objective (``objective.kind: python``).

``seed_landscape``: a smooth function of the seed's four genes with its minimum at 2 layers of 90 tanh units
without dropout: :func:`landscape` with its defaults (the unit tests' fake fitness is :func:`landscape` itself;
one of them moves the optimum). ``behave``: the same, except that chosen hidden sizes misbehave the ways a real
objective can: 17 raises, 18 returns NaN, 19 sleeps far past any timeout, 20 returns a mapping without the metric.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

RAISES, NAN, SLEEPS, NO_METRIC = 17, 18, 19, 20


def landscape(hparams: Mapping[str, Any], width: int = 90, scale: float = 10) -> float:
    """The test landscape: 0 at 2 layers of ``width`` tanh units without dropout; a layer off costs 1, ``scale``
    units of width off cost 1, another activation costs 1, dropout costs itself."""
    return (abs(hparams["n_layers"] - 2) + abs(hparams["hidden_size"] - width) / scale + hparams["dropout"]
            + (hparams["activation"] != "tanh"))


def seed_landscape(hparams: Mapping[str, Any], context: object) -> float:
    return landscape(hparams)


def behave(hparams: Mapping[str, Any], context: Any) -> Any:
    width = hparams["hidden_size"]
    if width == RAISES:
        raise ValueError(f"boom at width {width}")
    if width == NAN:
        return math.nan
    if width == SLEEPS:
        time.sleep(3600)
    if width == NO_METRIC:
        return {"other": 1.0}
    return seed_landscape(hparams, context)


def fails_unless_ready(hparams: Mapping[str, Any], context: Any) -> float:
    """A set-up that is broken until ``GASLURM_TEST_READY=1`` (say, a missing module load): every call fails."""
    import os

    if os.environ.get("GASLURM_TEST_READY") != "1":
        raise RuntimeError("the environment is not ready (GASLURM_TEST_READY unset)")
    return seed_landscape(hparams, context)


def index_1_fails_unless_ready(hparams: Mapping[str, Any], context: Any) -> float:
    """A flaky set-up that hits one evaluation per generation (index 1) until ``GASLURM_TEST_READY=1``."""
    import os

    if context.name.endswith("-1") and os.environ.get("GASLURM_TEST_READY") != "1":
        raise RuntimeError(f"{context.name}: the node is not ready")
    return seed_landscape(hparams, context)


def steps_with_checkpoint(hparams: Mapping[str, Any], context: Any) -> dict[str, float]:
    """A long evaluation (40 steps of 0.25 s) that keeps its progress in ``context.workdir``: a requeued or
    resubmitted attempt continues from the last step saved instead of starting over."""
    from pathlib import Path

    checkpoint = Path(context.workdir) / "step"
    start = int(checkpoint.read_text()) if checkpoint.exists() else 0
    for step in range(start, 40):
        time.sleep(0.25)
        tmp = checkpoint.with_suffix(".tmp")  # atomic: a preemption mid-write never leaves an empty checkpoint
        tmp.write_text(str(step + 1))
        tmp.replace(checkpoint)
        context.report(step + 1, progress=(step + 1) / 40)
    return {"value": seed_landscape(hparams, context), "attempt": float(context.attempt),
            "resumed_from": float(start)}


def slow_steps(hparams: Mapping[str, Any], context: Any) -> dict[str, float]:
    """70 s of work in 0.25 s steps, the progress saved in ``context.workdir`` after each: longer than any single
    attempt a 1-minute Slurm limit with a pre-timeout signal allows, so it finishes only by being requeued."""
    from pathlib import Path

    checkpoint = Path(context.workdir) / "step"
    start = int(checkpoint.read_text()) if checkpoint.exists() else 0
    for step in range(start, 280):
        time.sleep(0.25)
        # Atomic, as the README's checkpoint pattern says: a kill between truncate and write would leave it empty.
        tmp = checkpoint.with_suffix(".tmp")
        tmp.write_text(str(step + 1))
        tmp.replace(checkpoint)
    value = float(sum(v for v in hparams.values() if isinstance(v, (int, float))))
    return {"value": value, "attempt": float(context.attempt), "resumed_from": float(start)}


#: Median seconds of :func:`sleepy` (read where the evaluation runs; local workers and Slurm tasks inherit it).
SLEEPY_MEDIAN_ENV = "GASLURM_SLEEPY_MEDIAN_S"


def sleepy_duration(seed: int, median_s: float, sigma: float = 0.8) -> float:
    """A log-normal duration (median ``median_s``, shape ``sigma``) that is a function of ``seed`` alone."""
    import random

    return median_s * math.exp(sigma * random.Random(seed).gauss(0.0, 1.0))


def sleepy(hparams: Mapping[str, Any], context: Any) -> float:
    """:func:`seed_landscape` after a sleep whose length varies like real trainings do (log-normal, median
    ``$GASLURM_SLEEPY_MEDIAN_S`` seconds, default 1, sigma 0.8, seeded by the candidate): uses no CPU, so many
    run side by side on a small machine."""
    import os

    time.sleep(sleepy_duration(context.seed, float(os.environ.get(SLEEPY_MEDIAN_ENV, "1.0"))))
    return seed_landscape(hparams, context)


class _SignalsInItsFinaliser:
    def __del__(self) -> None:
        import signal

        signal.raise_signal(signal.SIGUSR1)


_calls = 0


def signal_in_a_finaliser(hparams: Mapping[str, Any], context: Any) -> float:
    """With ``GASLURM_TEST_SIGNAL_IN_FINALISER=1``, on its third call the process gets SIGUSR1 while inside a
    finaliser, where Python ignores (prints and drops) whatever the signal handler raises: what happens when
    Slurm's signal lands in ``Popen.__del__``."""
    import os

    global _calls
    _calls += 1
    if _calls == 3 and os.environ.get("GASLURM_TEST_SIGNAL_IN_FINALISER") == "1":
        _SignalsInItsFinaliser()  # dropped at once: its __del__ runs here
    return seed_landscape(hparams, context)
