"""Figures and tables from a run directory (works while the driver is running or down).

``RUN_DIR/report/`` gets:
- ``evolution.png``: hyperparameter values per generation (top rows) and fitness per generation (bottom),
  like the seed's Figures 1 and 4;
- ``best5.png``: the same axes for the five best models only (the seed's Figures 2 and 5);
- ``top10.md``: the seed's "top ten best models" table.
An island model's parent directory gets each island's report, ``islands.png`` (best so far per island,
migrations as arrows) and a global ``top10.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: login and compute nodes have no display
import matplotlib.pyplot as plt  # noqa: E402

from workflow.records import Evaluated, Hparams  # noqa: E402
from workflow.store import RunStore  # noqa: E402
from workflow.store.layout import island_dir, report_dir  # noqa: E402
from workflow.tables import best_per_generation, ranked, running_best, top_table  # noqa: E402


def _plot(evaluated: Sequence[Evaluated], activations: Sequence[str], title: str, path: Path,
          highlight_best_so_far: bool) -> None:
    genes = Hparams.gene_names()
    fig, axes = plt.subplots(len(genes) + 1, 1, figsize=(9, 12), sharex=True)
    gens = [e.candidate.generation for e in evaluated]
    colors = ["tab:red" if not e.result.ok else "tab:blue" for e in evaluated]
    for ax, gene in zip(axes[:-1], genes):
        values = [getattr(e.candidate.hparams, gene) for e in evaluated]
        if gene == "activation":
            values = [activations.index(v) if v in activations else -1 for v in values]
            ax.set_yticks(range(len(activations)), list(activations))
        ax.scatter(gens, values, c=colors, s=18, alpha=0.7)
        ax.set_ylabel(gene)
        ax.grid(alpha=0.3)
    ax = axes[-1]
    ok = ranked(evaluated)
    ax.scatter([e.candidate.generation for e in ok], [e.fitness for e in ok], s=18, alpha=0.7, label="evaluation")
    if highlight_best_so_far and ok:
        by_gen = best_per_generation(ok)
        ax.plot(list(by_gen), list(by_gen.values()), "-o", ms=3, label="best of generation")
        ax.plot(list(by_gen), running_best(by_gen.values()), "--", label="best so far")
    if ok and ok[0].fitness > 0:
        ax.set_yscale("log")
    ax.set_ylabel("fitness (val loss)")
    ax.set_xlabel("generation")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(run_dir: Path) -> list[Path]:
    """Write the report files; returns their paths (for an island run: each island's, then the parent's)."""
    store = RunStore.open(run_dir)
    if islands := store.island_count():
        return write_islands_report(run_dir, islands)
    config = store.config()
    evaluated = store.replay().evaluated()
    out = report_dir(run_dir)
    out.mkdir(mode=0o700, exist_ok=True)
    activations = config.search_space().activations
    paths = [out / "evolution.png", out / "best5.png", out / "top10.md"]
    _plot(evaluated, activations, f"{config.name}: hyperparameters (top) and fitness (bottom) per generation",
          paths[0], highlight_best_so_far=True)
    _plot(ranked(evaluated)[:5], activations, f"{config.name}: five best models", paths[1],
          highlight_best_so_far=False)
    paths[2].write_text(top_table(evaluated))
    return paths


def write_islands_report(parent: Path, count: int) -> list[Path]:
    """Each island's report, plus ``islands.png`` (best so far per island, migrations drawn as arrows) and a
    global ``top10.md`` with the island of each model."""
    paths: list[Path] = []
    evaluated: list[Evaluated] = []
    fig, ax = plt.subplots(figsize=(9, 5))
    curves: dict[int, dict[int, float]] = {}
    stores = [RunStore.open(island_dir(parent, k)) for k in range(count)]
    for k, store in enumerate(stores):
        paths.extend(write_report(store.run_dir))
        island = store.replay().evaluated()
        evaluated.extend(island)
        by_gen = best_per_generation(island)
        curves[k] = dict(zip(by_gen, running_best(by_gen.values())))
        if curves[k]:
            ax.plot(list(curves[k]), list(curves[k].values()), "-o", ms=3, label=f"island {k}")
    for k, store in enumerate(stores):
        for event in store.events():
            if event["event"] != "immigrated":
                continue
            gen, sender, batch = int(event["generation"]), int(event["from"]), int(event["batch"])
            y0, y1 = curves.get(sender, {}).get(gen), curves.get(k, {}).get(batch)
            if y0 is not None and y1 is not None and math.isfinite(y0) and math.isfinite(y1):
                ax.annotate("", xy=(batch + 0.15, y1), xytext=(gen, y0),
                            arrowprops={"arrowstyle": "->", "color": "grey", "alpha": 0.6})
    if any(v > 0 for c in curves.values() for v in c.values()):
        ax.set_yscale("log")
    ax.set_xlabel("generation")
    ax.set_ylabel("best fitness so far")
    ax.set_title("islands: best so far (arrows: migrations, sender -> receiver)")
    ax.grid(alpha=0.3)
    ax.legend()
    out = report_dir(parent)
    out.mkdir(mode=0o700, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out / "islands.png", dpi=100)
    plt.close(fig)
    (out / "top10.md").write_text(top_table(evaluated, title="Top ten best models (all islands)",
                                            extra={"island": lambda e: e.candidate.island}))
    return [*paths, out / "islands.png", out / "top10.md"]
