"""The journal's vocabulary (workflow/store/events.py): every kind round-trips, journals written before the
typed events (format 3 and 0.1's) are read with one meaning per word, and no other module builds or parses the
journal's dicts."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.support import ROOT, genes
from workflow.cli import main
from workflow.records import Candidate, Evaluated, Result
from workflow.store import RunStore
from workflow.store.events import (
    KINDS,
    Abandoned,
    Asked,
    ConfigChanged,
    Created,
    Emigrated,
    Enqueued,
    Extended,
    Finished,
    Immigrated,
    Recovered,
    Replaced,
    ResultRecorded,
    Retrying,
    Stopped,
    Submitted,
    Submitting,
    Told,
    Unknown,
    WandbChecked,
    decode,
    encode,
)
from workflow.store.journal import JOURNAL_FORMAT

FORMAT3 = ROOT / "tests" / "fixtures" / "format3"


def _cand(i: int) -> Candidate:
    return Candidate(f"fitness-2-{i}", genes(2, 32, "relu", 0.1), 2, i, "ga", seed=i)


MIGRANT = Evaluated(_cand(1), Result("fitness-2-1", "ok", 0.25, {"val_mse": 0.25}))
EXAMPLES = [
    Created(name="run", pid=7, format=JOURNAL_FORMAT, island=2),
    ConfigChanged(diff=("backend.timeout_s: 1 -> 900",), forced=False),
    Extended(generations=5, previous=3),
    Stopped(generation=1, failed=4, reason="timed out"),
    Finished(),
    Asked(ask=3, candidates=(_cand(1), _cand(2))),
    Submitting(names=("fitness-2-1",), generation=2, tag="run.g2.abc", folder="/x/%j", packs=(("fitness-2-1",),),
               resubmit=1, after="PREEMPTED"),
    Submitted(names=("fitness-2-1",), generation=2, tag="run.g2.abc", folder="/x/%j",
              job_ids={"fitness-2-1": "17_0"}, array_id="17"),
    Submitted(names=("fitness-2-1", "fitness-2-2"), generation=2, backend="local", pack_size=1),
    Recovered(names=("fitness-2-1",), generation=2, tag="run.g2.abc", folder="/x/%j", job_ids={"fitness-2-1": "17_0"}),
    Abandoned(names=("fitness-2-1",), generation=2, tag="run.g2.abc"),
    ResultRecorded(result=Result.failure("fitness-2-2", "boom"), generation=2),
    ResultRecorded(result=Result("fitness-2-2", "ok", 0.5), generation=2, attempt=2),
    Retrying(names=("fitness-2-2",), generation=2),
    Told(ask=2, names=None, generations=(2,), state={"rng": {"state": 1}, "bases": {"activation": 2.0}}),
    Told(ask=9, names=("fitness-2-1", "fitness-2-2"), generations=()),
    Emigrated(generation=2, id="1:2", to=(2,), migrants=(MIGRANT,)),
    Immigrated(generation=3, id="0:2", sender=0, sender_generation=2, migrants=(MIGRANT,), recovered=True,
               replaced=(Replaced("fitness-3-4", None),)),
    WandbChecked(generation=2, runs=5, disagreements=({"name": "fitness-2-1", "problem": "missing"},)),
    Enqueued(hparams={"layers": [16, 32], "activation": "relu"}, source="warm_start runs/a fitness-3-1"),
]


def _through_json(event):
    return decode(json.loads(json.dumps(encode(event), allow_nan=False)))


def test_every_kind_has_an_example_and_round_trips():
    assert {type(e) for e in EXAMPLES} == set(KINDS.values())
    for event in EXAMPLES:
        assert _through_json(event) == event, event


def test_a_first_attempt_is_written_as_before_and_read_from_journals_without_attempts():
    first = ResultRecorded(result=MIGRANT.result, generation=2)
    assert "attempt" not in encode(first) and first.attempt == 1
    assert decode({"event": "result", "generation": 2, "result": MIGRANT.result.to_dict()}) == first
    assert encode(ResultRecorded(result=MIGRANT.result, generation=2, attempt=3))["attempt"] == 3


def test_new_journals_say_ask_and_generation_never_batch(tmp_path):
    for event in EXAMPLES:
        assert "batch" not in encode(event), event


def test_unknown_kinds_are_kept_and_written_back_as_they_were():
    raw = {"t": 1.0, "event": "from_the_future", "x": [1, 2]}
    event = decode(raw)
    assert isinstance(event, Unknown) and event.kind == "from_the_future" and encode(event) == raw


def test_format_3_words_are_translated():
    c = _cand(1).to_dict()
    migrants = [{"candidate": c, "result": MIGRANT.result.to_dict()}]
    assert decode({"event": "asked", "batch": 4, "candidates": [c]}) == Asked(ask=4, candidates=(_cand(1),))
    # Generational: "batch" was the ask counter and the generation it completed; steady state named the tells.
    assert decode({"event": "told", "batch": 4, "state": {"rng": 1}}) == Told(ask=4, generations=(4,),
                                                                                state={"rng": 1})
    assert decode({"event": "told", "names": ["a", "b"], "generations": [2]}) == Told(ask=0, names=("a", "b"),
                                                                                       generations=(2,))
    assert decode({"event": "result", "batch": 2, "result": MIGRANT.result.to_dict()}) == ResultRecorded(
        result=MIGRANT.result, generation=2)
    assert decode({"event": "stopped", "batch": 1, "failed": 4, "reason": "r"}) == Stopped(generation=1, failed=4,
                                                                                           reason="r")
    # Immigrated: "batch" was the receiver's generation, "generation" the sender's, "from" the sender.
    old = {"event": "immigrated", "batch": 3, "id": "0:2", "from": 0, "generation": 2, "migrants": migrants,
           "recovered": False, "replaced": [{"name": "x", "fitness": 1.5}]}
    assert decode(old) == Immigrated(
        generation=3, id="0:2", sender=0, sender_generation=2, migrants=(MIGRANT,), replaced=(Replaced("x", 1.5),))
    assert decode({"event": "emigrated", "batch": 2, "id": "1:2", "to": [2], "migrants": migrants}) == Emigrated(
        generation=2, id="1:2", to=(2,), migrants=(MIGRANT,))
    # A Slurm submission found again by its tag was a "submitted" with "recovered": true.
    assert decode({"event": "submitted", "batch": 2, "names": ["a"], "tag": "t", "folder": "f",
                   "recovered": True, "job_ids": {"a": "5_0"}}) == Recovered(
        names=("a",), generation=2, tag="t", folder="f", job_ids={"a": "5_0"})
    assert decode({"event": "submitted", "batch": 1, "names": ["a"], "event_kind": "x", "backend": "local",
                   "pack_size": 1}) == Submitted(names=("a",), generation=1, backend="local", pack_size=1)
    assert decode({"event": "abandoned", "batch": 1, "names": ["a"], "tag": "t"}) == Abandoned(
        names=("a",), generation=1, tag="t")


@pytest.mark.parametrize("path", sorted(p for p in FORMAT3.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_every_event_of_the_format_3_fixtures_decodes(path):
    events = list(RunStore(path).events())
    assert events and isinstance(events[0], Created) and events[0].format == 3
    assert not [e for e in events if isinstance(e, Unknown)]
    # Re-encoded in today's words, each event decodes to itself.
    assert [_through_json(e) for e in events] == events


@pytest.mark.parametrize("name", ["ga-generational", "ga-steady", "bo", "random", "nsga2"])
def test_a_format_3_run_killed_mid_run_resumes_to_the_results_its_uninterrupted_run_had(name, tmp_path,
                                                                                        monkeypatch):
    # Written by the code before typed events (tests/fixtures/format3/README.md): killed after its 7th result.
    run_dir = tmp_path / name
    shutil.copytree(FORMAT3 / name, run_dir, ignore=shutil.ignore_patterns("expected-results.csv"))
    run_dir.chmod(0o700)
    monkeypatch.chdir(ROOT)  # the objective's module path is relative to the repository
    assert main(["resume", str(run_dir), "--no-report"]) == 0

    def rows(path: Path) -> list[dict[str, str]]:
        # seed: a column added after these fixtures were written
        return [{k: v for k, v in r.items() if k not in ("seconds", "seed")} for r in csv.DictReader(path.open())]

    assert rows(run_dir / "results.csv") == rows(FORMAT3 / name / "expected-results.csv")
    events = list(RunStore(run_dir).events())
    names = [e.result.name for e in events if isinstance(e, ResultRecorded)]
    assert len(names) == len(set(names))  # none evaluated twice


def test_only_the_events_module_builds_or_parses_journal_dicts():
    # The journal's words live in one module: anywhere else, a dict with an "event" key (or a lookup of one)
    # is a second vocabulary growing behind its back.
    pattern = re.compile(r"""["']event["']\s*[:\]]|get\(\s*["']event["']""")
    offenders = []
    for path in sorted((ROOT / "workflow").rglob("*.py")):
        if path == ROOT / "workflow" / "store" / "events.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
