"""The run directory: an append-only journal from which everything else is rebuilt.

- :mod:`~workflow.store.events`: the journal's typed events, the only code that builds or parses its dicts;
- :mod:`~workflow.store.journal`: :class:`RunStore`, appending and reading the journal;
- :mod:`~workflow.store.state`: :class:`RunState`, what the journal says;
- :mod:`~workflow.store.layout`: where each file lives (also an island's directory);
- :mod:`~workflow.store.results`: ``results.csv``;
- :mod:`~workflow.store.rundir`: creating or continuing a run directory for a config;
- :mod:`~workflow.store.lock`: one driver per run directory;
- :mod:`~workflow.store.atomic`: the one atomic write.
"""

from workflow.store.journal import RunStore
from workflow.store.state import RunState

__all__ = ["RunState", "RunStore"]
