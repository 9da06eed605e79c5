"""The run store: atomic creation, durable journal, torn tails tolerated, corruption reported."""

import os
import stat

import pytest

from tests.support import genes
from workflow.config import from_mapping
from workflow.errors import RunDirError
from workflow.records import Candidate, Result
from workflow.store import RunStore
from workflow.store.events import Asked, Created, Finished, ResultRecorded
from workflow.store.results import read_results_csv


def _cand(i):
    return Candidate(f"fitness-1-{i}", genes(2, 32, "relu", 0.1), 1, i, "ga", seed=i)


@pytest.fixture
def store(tmp_path):
    return RunStore.create(tmp_path / "run", from_mapping({"name": "t"}))


def test_create_is_user_only_and_complete(store, tmp_path):
    assert stat.S_IMODE(os.stat(store.run_dir).st_mode) == 0o700
    assert store.config().name == "t"
    assert [type(e) for e in store.events()] == [Created]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temp directory left behind


def test_replay_exactly_once_and_results_csv(store):
    store.append(Asked(ask=1, candidates=(_cand(1), _cand(2))))
    store.append(ResultRecorded(result=Result("fitness-1-1", "ok", 0.5, {"val_mse": 0.5}), generation=1))
    store.append(ResultRecorded(result=Result("fitness-1-1", "ok", 0.9), generation=1))  # duplicate
    store.append(ResultRecorded(result=Result.failure("fitness-1-2", "boom"), generation=1))
    state = store.replay()
    assert state.results["fitness-1-1"].fitness == 0.5
    assert state.results["fitness-1-2"].status == "failed"
    rows = read_results_csv(store.write_results_csv(state))
    assert [r["name"] for r in rows] == ["fitness-1-1", "fitness-1-2"]
    assert rows[1]["fitness"] == "inf" and rows[1]["reason"] == "boom"
    assert rows[0]["val_mse"] == "0.5"


def test_torn_last_line_is_tolerated_and_healed(store):
    with open(store.journal_path, "ab") as handle:
        handle.write(b'{"event":"asked","ask":1,"candi')
    assert [type(e) for e in store.events()] == [Created]
    store.append(Finished())
    assert [type(e) for e in store.events()] == [Created, Finished]


def test_corrupt_record_in_the_middle_is_reported_with_line(store):
    with open(store.journal_path, "ab") as handle:
        handle.write(b'{"event": "asked", "ask": 1}}\n')
    store.append(Finished())
    with pytest.raises(RunDirError, match=r"journal.jsonl:2: corrupt journal record"):
        list(store.events())


def test_open_rejects_non_run_directory(tmp_path):
    with pytest.raises(RunDirError, match="not a run directory"):
        RunStore.open(tmp_path)


def test_status_shows_job_ids_of_one_array_as_a_range():
    from workflow.status import _id_ranges

    assert _id_ranges(["75_0", "75_1", "75_2", "75_3"]) == "75_[0-3]"
    assert _id_ranges(["75_0", "75_2"]) == "75_0, 75_2"
    assert _id_ranges(["80"]) == "80"
    assert _id_ranges([]) == "-"


def test_the_latest_submission_of_each_evaluation_gives_its_job_id(store):
    from workflow.store.events import Submitted, Submitting

    store.append(Asked(ask=1, candidates=(_cand(1), _cand(2))))
    store.append(Submitting(names=("fitness-1-1", "fitness-1-2"), generation=1, tag="t", folder="f",
                            packs=(("fitness-1-1",), ("fitness-1-2",))))
    store.append(Submitted(names=("fitness-1-1",), generation=1, tag="t", folder="f", job_ids={"fitness-1-1": "9_0"}))
    state = store.replay()
    assert state.job_id("fitness-1-1") == "9_0"
    assert state.job_id("fitness-1-2") == "" and isinstance(state.submissions["fitness-1-2"], Submitting)
    assert state.job_id("fitness-9-9") == ""
