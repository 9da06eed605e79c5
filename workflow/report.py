"""Figures and tables from a run directory (works while the driver is running or down).

``RUN_DIR/report/`` gets:
- ``evolution.png``: hyperparameter values per generation (top rows) and fitness per generation (bottom),
  like the seed's Figures 1 and 4;
- ``best5.png``: the same axes for the five best models only (the seed's Figures 2 and 5);
- ``top10.md``: the seed's "top ten best models" table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: login and compute nodes have no display
import matplotlib.pyplot as plt  # noqa: E402

from workflow.records import Evaluated  # noqa: E402
from workflow.store import RunStore  # noqa: E402

HPARAMS = ("n_layers", "hidden_size", "activation", "dropout")


def top_table(evaluated: Sequence[Evaluated], n: int = 10, title: str = "Top ten best models") -> str:
    """Markdown table (name, dropout, hidden_size, n_layers, activation, fitness), best first."""
    ranked = sorted((e for e in evaluated if e.result.ok), key=lambda e: e.fitness)[:n]
    lines = [f"# {title}", "", "| name | dropout | hidden_size | n_layers | activation | fitness |",
             "|---|---|---|---|---|---|"]
    for e in ranked:
        hp = e.candidate.hparams
        lines.append(f"| {e.candidate.name} | {hp.dropout:.5g} | {hp.hidden_size} | {hp.n_layers} | "
                     f"{hp.activation} | {e.fitness:.5g} |")
    return "\n".join(lines) + "\n"


def _plot(evaluated: Sequence[Evaluated], activations: Sequence[str], title: str, path: Path,
          highlight_best_so_far: bool) -> None:
    fig, axes = plt.subplots(5, 1, figsize=(9, 12), sharex=True)
    gens = [e.candidate.generation for e in evaluated]
    for ax, hp_name in zip(axes[:4], HPARAMS):
        if hp_name == "activation":
            values = [activations.index(e.candidate.hparams.activation)
                      if e.candidate.hparams.activation in activations else -1 for e in evaluated]
            ax.set_yticks(range(len(activations)), list(activations))
        else:
            values = [getattr(e.candidate.hparams, hp_name) for e in evaluated]
        colors = ["tab:red" if not e.result.ok else "tab:blue" for e in evaluated]
        ax.scatter(gens, values, c=colors, s=18, alpha=0.7)
        ax.set_ylabel(hp_name)
        ax.grid(alpha=0.3)
    ax = axes[4]
    ok = [e for e in evaluated if e.result.ok and math.isfinite(e.fitness)]
    ax.scatter([e.candidate.generation for e in ok], [e.fitness for e in ok], s=18, alpha=0.7,
               label="evaluation")
    if highlight_best_so_far and ok:
        by_gen: dict[int, float] = {}
        for e in ok:
            by_gen[e.candidate.generation] = min(by_gen.get(e.candidate.generation, math.inf), e.fitness)
        xs = sorted(by_gen)
        best, running = [], math.inf
        for g in xs:
            running = min(running, by_gen[g])
            best.append(running)
        ax.plot(xs, [by_gen[g] for g in xs], "-o", ms=3, label="best of generation")
        ax.plot(xs, best, "--", label="best so far")
    if ok and min(e.fitness for e in ok) > 0:
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
    state = store.replay()
    evaluated = state.evaluated()
    out = Path(run_dir) / "report"
    out.mkdir(mode=0o700, exist_ok=True)
    activations = config.search_space().activations
    paths = [out / "evolution.png", out / "best5.png", out / "top10.md"]
    _plot(evaluated, activations, f"{config.name}: hyperparameters (top) and fitness (bottom) per generation",
          paths[0], highlight_best_so_far=True)
    best5 = sorted((e for e in evaluated if e.result.ok), key=lambda e: e.fitness)[:5]
    _plot(best5, activations, f"{config.name}: five best models", paths[1], highlight_best_so_far=False)
    paths[2].write_text(top_table(evaluated))
    return paths


def write_islands_report(parent: Path, count: int) -> list[Path]:
    """Each island's report, plus ``islands.png`` (best so far per island, migrations drawn as arrows) and a
    global ``top10.md`` with the island of each model."""
    from workflow.islands.runner import island_dir

    paths: list[Path] = []
    evaluated: list[Evaluated] = []
    fig, ax = plt.subplots(figsize=(9, 5))
    best_curves: dict[int, dict[int, float]] = {}
    for k in range(count):
        path = island_dir(parent, k)
        paths.extend(write_report(path))
        state = RunStore.open(path).replay()
        evaluated.extend(state.evaluated())
        curve, running = {}, math.inf
        for e in sorted(state.evaluated(), key=lambda e: e.candidate.generation):
            running = min(running, e.fitness)
            curve[e.candidate.generation] = running
        best_curves[k] = curve
        if curve:
            ax.plot(list(curve), list(curve.values()), "-o", ms=3, label=f"island {k}")
    for k in range(count):
        for event in RunStore(island_dir(parent, k)).events():
            if event["event"] != "immigrated":
                continue
            gen, sender = int(event["generation"]), int(event["from"])
            y0 = best_curves.get(sender, {}).get(gen)
            y1 = best_curves.get(k, {}).get(int(event["batch"]))
            if y0 is not None and y1 is not None and math.isfinite(y0) and math.isfinite(y1):
                ax.annotate("", xy=(int(event["batch"]) + 0.15, y1), xytext=(gen, y0),
                            arrowprops={"arrowstyle": "->", "color": "grey", "alpha": 0.6})
    if any(v > 0 for c in best_curves.values() for v in c.values() if math.isfinite(v)):
        ax.set_yscale("log")
    ax.set_xlabel("generation")
    ax.set_ylabel("best fitness so far")
    ax.set_title("islands: best so far (arrows: migrations, sender -> receiver)")
    ax.grid(alpha=0.3)
    ax.legend()
    out = Path(parent) / "report"
    out.mkdir(mode=0o700, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out / "islands.png", dpi=100)
    plt.close(fig)
    ranked = sorted((e for e in evaluated if e.result.ok), key=lambda e: e.fitness)[:10]
    lines = ["# Top ten best models (all islands)", "",
             "| name | island | dropout | hidden_size | n_layers | activation | fitness |",
             "|---|---|---|---|---|---|---|"]
    for e in ranked:
        hp = e.candidate.hparams
        lines.append(f"| {e.candidate.name} | {e.candidate.island} | {hp.dropout:.5g} | {hp.hidden_size} | "
                     f"{hp.n_layers} | {hp.activation} | {e.fitness:.5g} |")
    (out / "top10.md").write_text("\n".join(lines) + "\n")
    return [*paths, out / "islands.png", out / "top10.md"]
