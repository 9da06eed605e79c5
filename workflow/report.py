"""Figures and tables from a run directory (works while the driver is running or down).

``RUN_DIR/report/`` gets:
- ``evolution.png``: hyperparameter values per generation (top rows) and fitness per generation (bottom),
  like the seed's Figures 1 and 4;
- ``best5.png``: the same axes for the five best models only (the seed's Figures 2 and 5);
- ``top10.md``: the seed's "top ten best models" table;
- ``bases.png``: each tree gene's base b per generation, when the GA adapts them.
A panel per gene: a categorical gene's values on named ticks, a layers gene as depth and mean width.
An island model's parent directory gets each island's report, ``islands.png`` (best so far per island,
migrations as arrows) and a global ``top10.md``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: login and compute nodes have no display
import matplotlib.pyplot as plt  # noqa: E402

from workflow.config import Config  # noqa: E402
from workflow.front import front_hypervolume, front_markdown, pareto_front, reference_point  # noqa: E402
from workflow.records import Evaluated  # noqa: E402
from workflow.space import CategoricalGene, LayersGene, SearchSpace, Value  # noqa: E402
from workflow.store import RunStore  # noqa: E402
from workflow.store.layout import island_dir, report_dir  # noqa: E402
from workflow.tables import best_per_generation, ranked, running_best, top_table  # noqa: E402

Panel = tuple[str, str, Callable[[Value], float], Sequence[str]]


def _panels(space: SearchSpace) -> list[Panel]:
    """(gene, label, value -> y, tick labels) per panel: one per gene, two for a layers gene."""
    panels: list[Panel] = []
    for gene in space.genes:
        if isinstance(gene, LayersGene):
            panels.append((gene.name, f"{gene.name} depth", len, ()))
            panels.append((gene.name, f"{gene.name} mean width", _mean, ()))
        elif isinstance(gene, CategoricalGene):
            panels.append((gene.name, gene.name, functools.partial(_index, list(gene.values)),
                           [str(v) for v in gene.values]))
        else:
            panels.append((gene.name, gene.name, float, ()))
    return panels


def _mean(widths: Value) -> float:
    return sum(widths) / len(widths) if widths else 0.0


def _index(values: list[Value], value: Value) -> float:
    return values.index(value) if value in values else -1


def _plot(evaluated: Sequence[Evaluated], space: SearchSpace, title: str, path: Path,
          highlight_best_so_far: bool) -> None:
    panels = _panels(space)
    fig, axes = plt.subplots(len(panels) + 1, 1, figsize=(9, 2.4 * (len(panels) + 1)), sharex=True, squeeze=False)
    axes = axes[:, 0]
    gens = [e.candidate.generation for e in evaluated]
    colors = ["tab:red" if not e.result.ok else "tab:blue" for e in evaluated]
    for ax, (name, label, to_y, ticks) in zip(axes[:-1], panels):
        values = [to_y(e.candidate.hparams[name]) for e in evaluated]
        if ticks:
            ax.set_yticks(range(len(ticks)), list(ticks))
        ax.scatter(gens, values, c=colors, s=18, alpha=0.7)
        ax.set_ylabel(label)
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


def _plot_bases(bases: dict[int, dict[str, float]], title: str, path: Path) -> None:
    """Each tree gene's base b after each generation (adaptive exploration)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for gene in sorted({g for row in bases.values() for g in row}):
        gens = [k for k in sorted(bases) if gene in bases[k]]
        ax.plot(gens, [bases[k][gene] for k in gens], "-o", ms=3, label=gene)
    ax.set_yscale("log")
    ax.set_xlabel("generation")
    ax.set_ylabel("tree base b (larger explores more)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(run_dir: Path) -> list[Path]:
    """Write the report files; returns their paths (for an island run: each island's, then the parent's)."""
    store = RunStore.open(run_dir)
    if islands := store.island_count():
        return write_islands_report(run_dir, islands)
    config = store.config()
    state = store.replay()
    evaluated = state.evaluated()
    space = config.search_space()
    out = report_dir(run_dir)
    out.mkdir(mode=0o700, exist_ok=True)
    paths = [out / "evolution.png", out / "best5.png", out / "top10.md"]
    _plot(evaluated, space, f"{config.name}: hyperparameters (top) and fitness (bottom) per generation",
          paths[0], highlight_best_so_far=True)
    _plot(ranked(evaluated)[:5], space, f"{config.name}: five best models", paths[1], highlight_best_so_far=False)
    paths[2].write_text(top_table(evaluated, space))
    bases = state.bases_by_generation()
    if bases:
        paths.append(out / "bases.png")
        _plot_bases(bases, f"{config.name}: adaptive exploration (tree bases per generation)", paths[-1])
    if config.multi_objective:
        paths.extend(_write_front(config, evaluated, out))
    return paths


def _write_front(config: Config, evaluated: Sequence[Evaluated], out: Path) -> list[Path]:
    """``pareto.png`` (every evaluation by its first two objectives, coloured by generation, the front drawn
    over them) and ``pareto.md`` (the front as a table, and its hypervolume)."""
    objectives = config.optimizer.objectives
    front = pareto_front(evaluated, objectives)
    reference = reference_point(evaluated, objectives, config.optimizer.reference_point)
    volume = front_hypervolume(evaluated, objectives, reference)
    shown = {o.metric: (-v if o.direction == "maximize" else v) for o, v in zip(objectives, reference)}
    md = out / "pareto.md"
    md.write_text(front_markdown(front, objectives, config.search_space().names, volume, shown))
    png = out / "pareto.png"
    x, y = objectives[0].metric, objectives[1].metric
    ok = [e for e in evaluated if e.result.ok and x in e.result.metrics and y in e.result.metrics]
    fig, ax = plt.subplots(figsize=(7, 5))
    if ok:
        points = ax.scatter([e.result.metrics[x] for e in ok], [e.result.metrics[y] for e in ok],
                            c=[e.candidate.generation for e in ok], cmap="viridis", s=18, alpha=0.8)
        fig.colorbar(points, ax=ax, label="generation")
    if front:
        ordered = sorted(front, key=lambda e: e.result.metrics[x])
        ax.step([e.result.metrics[x] for e in ordered], [e.result.metrics[y] for e in ordered], "-",
                where="post", color="crimson", lw=1.2)
        ax.scatter([e.result.metrics[x] for e in ordered], [e.result.metrics[y] for e in ordered],
                   facecolors="none", edgecolors="crimson", s=60, label=f"Pareto front ({len(front)})")
        ax.legend()
    if ok and min(e.result.metrics[x] for e in ok) > 0 and objectives[0].direction == "minimize":
        ax.set_xscale("log")
    if ok and min(e.result.metrics[y] for e in ok) > 0 and objectives[1].direction == "minimize":
        ax.set_yscale("log")
    ax.set_xlabel(f"{x} ({objectives[0].direction})")
    ax.set_ylabel(f"{y} ({objectives[1].direction})")
    ax.set_title(f"{config.name}: {len(ok)} evaluations, hypervolume {volume:.4g}")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return [png, md]


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
        for event in store.replay().immigrations:
            gen, sender, batch = event.sender_generation, event.sender, event.generation
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
    (out / "top10.md").write_text(top_table(evaluated, RunStore.open(parent).config().search_space(),
                                            title="Top ten best models (all islands)",
                                            extra={"island": lambda e: e.candidate.island}))
    return [*paths, out / "islands.png", out / "top10.md"]
