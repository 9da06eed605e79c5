"""Run directories written by version 0.1 (journal format 1: flat optimizer keys, a bounds-pair space, ``batch``
for both the ask counter and the generation) resume with today's code to exactly what 0.1 itself gave. The GA's
fixture is resumed in test_local_run.py; BO's and random search's here."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from tests.support import ROOT, cli
from workflow.store import RunStore
from workflow.store.events import ResultRecorded


def _searched(path: Path) -> list[tuple[object, ...]]:
    """What the search saw of each evaluation: name, genes, fitness (not times or ids; 0.1 wrote dropout with 6
    decimals, today's results.csv 8 significant digits)."""
    with path.open() as handle:
        return [(r["name"], r["n_layers"], r["hidden_size"], r["activation"], round(float(r['dropout']), 6),
                 r["status"], r["fitness"]) for r in csv.DictReader(handle)]


@pytest.mark.parametrize("optimizer", ["bo", "random"])
def test_a_run_directory_of_0_1_resumes_to_what_0_1_gave(optimizer, tmp_path):
    fixture = ROOT / "tests" / "fixtures" / f"run-v0.1-{optimizer}"
    old = tmp_path / "old"
    shutil.copytree(fixture, old, ignore=shutil.ignore_patterns("README.md", "expected-results.csv"))
    old.chmod(0o700)
    cli("resume", old, "--no-report")
    expected = _searched(fixture / "expected-results.csv")
    assert len(expected) == 8 and _searched(old / "results.csv") == expected
    names = [e.result.name for e in RunStore(old).events() if isinstance(e, ResultRecorded)]
    assert sorted(names) == sorted({r[0] for r in expected})  # each evaluated once
