"""Island-model migration, pure: who sends to whom, when, who emigrates and who is replaced.

Every ``interval`` generations an island sends copies of its ``migrants`` best individuals to each of its
neighbours; a receiving GA replaces its worst members with the immigrants (``GeneticAlgorithm.immigrate``).
"""

from __future__ import annotations

from collections.abc import Sequence

from workflow.core.ranking import Ranking
from workflow.records import Evaluated


def neighbours(topology: str, count: int, matrix: Sequence[Sequence[int]] | None = None) -> dict[int, list[int]]:
    """{island: islands it sends to}. ``ring``: k -> k+1; ``full``: everyone else; ``matrix[i][j]``: i -> j."""
    if count <= 1:
        return {i: [] for i in range(count)}
    if topology == "ring":
        return {i: [(i + 1) % count] for i in range(count)}
    if topology == "full":
        return {i: [j for j in range(count) if j != i] for i in range(count)}
    if topology == "matrix":
        if matrix is None:
            raise ValueError("topology 'matrix' needs islands.matrix")
        return {i: [j for j in range(count) if matrix[i][j] and j != i] for i in range(count)}
    raise ValueError(f"unknown topology {topology!r}")


def senders_to(targets: dict[int, list[int]], island: int) -> list[int]:
    """Islands that send to ``island``."""
    return sorted(i for i, outs in targets.items() if island in outs)


def migration_due(generation: int, interval: int, generations: int) -> bool:
    """Migrate after generations interval, 2*interval, ... but not after the last one (nobody would use it)."""
    return generation % interval == 0 and generation < generations


def select_emigrants(population: Sequence[Evaluated], migrants: int,
                     ranking: Ranking | None = None) -> list[Evaluated]:
    """Copies of the best ``migrants`` individuals (failed ones never emigrate); best by ``ranking`` (default:
    fitness; several objectives: rank and crowding within the population)."""
    ok = [e for e in population if e.result.ok]
    return (ranking or Ranking()).best_first(ok)[:migrants]


def replace_worst(population: Sequence[Evaluated], migrants: Sequence[Evaluated],
                  ranking: Ranking | None = None) -> tuple[list[Evaluated], list[Evaluated]]:
    """(the population with its worst members replaced by ``migrants``, the members replaced); worst by
    ``ranking`` (default: fitness).

    The population keeps its size (a population smaller than the migrants takes that many of them).
    """
    ranked = (ranking or Ranking()).best_first(population)
    if not migrants:
        return ranked, []
    keep = max(len(ranked) - len(migrants), 0)
    return ranked[:keep] + list(migrants)[: len(ranked) or len(migrants)], ranked[keep:]


def migration_id(sender: int, generation: int) -> str:
    """Identity of one sending: a receiver applies each at most once (live message or recovered from disk)."""
    return f"{sender}:{generation}"
