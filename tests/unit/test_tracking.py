"""W&B tracking: run ids, the spec, comparing summaries, and failure tolerance with the real wandb package."""

import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import workflow.tracking.evaluation as evaluation
from tests.support import genes
from workflow.config import from_mapping
from workflow.records import Candidate, Result
from workflow.store import RunStore
from workflow.tables import markdown_table
from workflow.tracking.evaluation import evaluation_config, result_summary, tracked_evaluation
from workflow.tracking.spec import TrackingSpec, make_run_id, run_dir_tag
from workflow.wandb_driver.check import compare
from workflow.wandb_driver.readback import RunRecord
from workflow.wandb_driver.summary import columns, summary_rows

ROOT = Path(__file__).resolve().parents[2]
MARKER = "MARKER-unit-7f3c9e1d2b"


def _config(**tracking):
    return from_mapping({"name": "exp", "tracking": tracking})


def _cand(name="fitness-1-1", island=0, dropout=0.1):
    return Candidate(name=name, hparams=genes(2, 32, "relu", dropout), generation=1, index=1, optimizer="ga",
                     island=island, seed=3)


# ------------------------------------------------------------------------------------------------ ids


def test_run_id_is_deterministic_valid_and_short():
    assert make_run_id("ab12cd34", "fitness-3-2") == "ab12cd34-fitness-3-2"
    assert make_run_id("ab12cd34", "BO-Iteration-7") == "ab12cd34-BO-Iteration-7"
    assert make_run_id("ab12cd34", "fitness-3-2", island=2) == "ab12cd34-i2-fitness-3-2"
    odd = [make_run_id("ab12cd34", n) for n in ("a/b", "a:b", "a b", "x" * 200, "x" * 199 + "y")]
    for rid in odd:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", rid), rid
    assert len(set(odd)) == len(odd)  # replaced characters and truncation keep ids distinct
    assert make_run_id("ab12cd34", "a/b") == make_run_id("ab12cd34", "a/b")


def test_run_dir_tag_follows_the_run_directory_not_its_path(tmp_path):
    config = _config(mode="offline")
    run_dir = tmp_path / "run"
    RunStore.create(run_dir, config)
    tag = run_dir_tag(run_dir)
    assert re.fullmatch(r"[0-9a-f]{8}", tag)
    assert run_dir_tag(Path(os.path.relpath(run_dir))) == tag  # same from any cwd / spelling
    moved = tmp_path / "moved"
    run_dir.rename(moved)
    assert run_dir_tag(moved) == tag  # the journal travels with the directory
    RunStore.create(run_dir, config)  # a new run directory at the old path: new ids, no appending
    assert run_dir_tag(run_dir) != tag
    plain = tmp_path / "plain"
    plain.mkdir()
    assert run_dir_tag(plain) == run_dir_tag(plain) != run_dir_tag(tmp_path)


def test_spec_from_config(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", MARKER)
    assert TrackingSpec.from_config(_config(), tmp_path) is None  # disabled by default
    spec = TrackingSpec.from_config(_config(mode="offline", project="proj", entity="team"), tmp_path)
    assert spec is not None
    assert (spec.mode, spec.project, spec.entity, spec.group) == ("offline", "proj", "team", "exp")
    assert spec.dir == str(tmp_path.resolve() / "wandb") and spec.root == tmp_path.resolve()
    assert spec.run_id("fitness-1-2") == f"{spec.tag}-fitness-1-2"
    assert spec.experiment_id == f"{spec.tag}-experiment"
    island = TrackingSpec.from_config(_config(mode="online"), tmp_path, island=3)
    assert island is not None and island.group == "exp-island3" and island.mode == "online"
    data = pickle.dumps(spec)
    assert pickle.loads(data) == spec
    assert MARKER.encode() not in data and MARKER not in repr(spec)
    with pytest.raises(ValueError, match="must end in /wandb"):
        TrackingSpec(mode="offline", project="p", entity=None, group="g", dir=str(tmp_path), tag="t")


def test_island_run_directory_gets_its_group_from_the_journal(tmp_path):
    run_dir = tmp_path / "island-2"
    RunStore.create(run_dir, _config(mode="offline"), island=2)
    spec = TrackingSpec.from_config(_config(mode="offline"), run_dir)
    assert spec is not None and spec.group == "exp-island2"


def test_only_rank_zero_tracks_when_several_processes_train_one_evaluation(tmp_path, monkeypatch):
    spec = TrackingSpec(mode="offline", project="p", entity=None, group="g", dir=str(tmp_path / "wandb"), tag="t")
    monkeypatch.setenv("SLURM_PROCID", "1")
    with tracked_evaluation(spec, _cand()) as tracker:
        assert not tracker.active
        tracker.log_epoch({"val_mse": 1.0}, 1)
        tracker.set_result(Result("fitness-1-1", "ok", 1.0))
    assert not (tmp_path / "wandb").exists()


# ------------------------------------------------------------------------------ an evaluation's run


class _FakeRun:
    """What :func:`tracked_evaluation` does to a wandb run: metrics defined, rows logged, summary, finish."""

    def __init__(self, fail_on=""):
        self.rows, self.summary, self.exit_codes, self.fail_on = [], {}, [], fail_on

    def define_metric(self, *args, **kwargs):
        pass

    def log(self, row):
        if self.fail_on == "log":
            raise RuntimeError(f"log failed, key {MARKER}")
        self.rows.append(row)

    def finish(self, exit_code=0):
        self.exit_codes.append(exit_code)


@pytest.fixture
def fake_run(monkeypatch, tmp_path):
    """(the spec, the runs that ``init_run`` opened): W&B faked at ``init_run``, the key set to MARKER."""
    opened = []

    def init_run(spec, **kwargs):
        opened.append(_FakeRun(fail_on=os.environ.get("FAKE_RUN_FAILS", "")))
        return opened[-1]

    monkeypatch.setattr(evaluation, "init_run", init_run)
    monkeypatch.setenv("WANDB_API_KEY", MARKER)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    spec = TrackingSpec(mode="offline", project="p", entity=None, group="g", dir=str(tmp_path / "wandb"), tag="t")
    return spec, opened


def test_a_tracked_evaluation_logs_its_epochs_and_closes_with_its_result(fake_run):
    spec, opened = fake_run
    with tracked_evaluation(spec, _cand()) as tracker:
        tracker.log_epoch({"val_mse": 0.5}, 1)
        tracker.set_result(Result("fitness-1-1", "ok", 0.25, {"val_mse": 0.25}, seconds=2.0))
    (run,) = opened
    assert run.rows == [{"val_mse": 0.5, "epoch": 1}] and run.exit_codes == [0]
    assert run.summary == {"status": "ok", "fitness": 0.25, "val_mse": 0.25, "seconds": 2.0}
    assert not tracker.active


def test_a_tracked_evaluation_that_raises_closes_its_run_as_failed_and_the_exception_goes_on(fake_run):
    spec, opened = fake_run
    with pytest.raises(ValueError, match="boom") as raised, tracked_evaluation(spec, _cand()):
        raise ValueError(f"boom with {MARKER} in it")
    (run,) = opened
    assert run.exit_codes == [1] and run.summary["status"] == "failed"
    assert run.summary["reason"] == "ValueError: boom with *** in it"  # the key never reaches W&B
    assert MARKER in str(raised.value)  # the exception itself is unchanged


def test_a_tracked_evaluation_without_a_result_is_closed_as_failed(fake_run):
    spec, opened = fake_run
    with tracked_evaluation(spec, _cand()):
        pass
    assert opened[0].exit_codes == [1] and opened[0].summary["reason"] == "the evaluation gave its W&B run no result"


def test_w_and_b_trouble_is_logged_once_and_the_evaluation_goes_on(fake_run, monkeypatch, caplog):
    spec, opened = fake_run
    monkeypatch.setenv("FAKE_RUN_FAILS", "log")
    with tracked_evaluation(spec, _cand()) as tracker:
        for epoch in (1, 2, 3):
            tracker.log_epoch({"val_mse": 1.0}, epoch)
        tracker.set_result(Result("fitness-1-1", "ok", 1.0))
    warnings = [r.getMessage() for r in caplog.records if r.name == "workflow.tracking"]
    assert len(warnings) == 1 and warnings[0].startswith("W&B: logging an epoch failed (RuntimeError")
    assert MARKER not in caplog.text
    assert opened[0].exit_codes == [1]  # given up at the first error, never finished with the summary


# -------------------------------------------------------------------------------------- summaries


def test_evaluation_config_and_result_summary():
    config = evaluation_config(_cand(), _config().task, _config().train)
    assert {k: config[k] for k in ("n_layers", "hidden_size", "activation", "dropout")} == \
        {"n_layers": 2, "hidden_size": 32, "activation": "relu", "dropout": 0.1}
    assert config["name"] == "fitness-1-1" and config["train"]["epochs"] == 10
    json.dumps(config)
    ok = result_summary(Result("fitness-1-1", "ok", 0.25, {"val_mse": 0.25, "epochs": 3.0}, seconds=1.23456))
    assert ok == {"status": "ok", "fitness": 0.25, "val_mse": 0.25, "epochs": 3.0, "seconds": 1.235}
    failed = result_summary(Result.failure("fitness-1-1", "boom"))
    assert failed["status"] == "failed" and "fitness" not in failed and failed["reason"] == "boom"


def _record(name, summary, config=None, state="finished"):
    return RunRecord(run_id=f"t-{name}", name=name, state=state, config=config or {}, summary=summary)


def test_compare_reports_each_kind_of_disagreement():
    cands = [_cand(f"fitness-1-{i}") for i in range(1, 7)]
    results = {
        "fitness-1-1": Result("fitness-1-1", "ok", 0.5, {"val_mse": 0.5}),
        "fitness-1-2": Result("fitness-1-2", "ok", 0.5, {"val_mse": 0.5}),
        "fitness-1-3": Result("fitness-1-3", "ok", 0.5, {"val_mse": 0.5}),
        "fitness-1-4": Result.failure("fitness-1-4", "killed"),
        "fitness-1-5": Result("fitness-1-5", "ok", 0.5, {}),
        "fitness-1-6": Result("fitness-1-6", "ok", 0.5, {}),
    }
    records = {
        "fitness-1-1": _record("fitness-1-1", {"status": "ok", "fitness": 0.5, "val_mse": 0.5}),  # agrees
        "fitness-1-2": _record("fitness-1-2", {"status": "ok", "fitness": 0.7, "val_mse": 0.5}),
        "fitness-1-3": _record("fitness-1-3", {"status": "failed", "reason": "x"}),
        # fitness-1-4: failed and no W&B run at all: consistent (a killed task may leave nothing)
        "fitness-1-6": _record("fitness-1-6", {"_step": 3}, state="running"),
    }
    problems = compare(cands, results, records)
    assert problems == [
        {"name": "fitness-1-2", "problem": "fitness", "wandb": 0.7, "result": 0.5},
        {"name": "fitness-1-3", "problem": "status", "wandb": "failed", "result": "ok"},
        {"name": "fitness-1-5", "problem": "no W&B run"},
        {"name": "fitness-1-6", "problem": "W&B run without a final summary (running)"},
    ]
    json.dumps(problems, allow_nan=False)


def test_summary_rows_sorted_failed_last_incomplete_left_out():
    def cfg(d):
        return {"dropout": d, "hidden_size": 16, "n_layers": 1, "activation": "relu"}

    records = {
        "b": _record("b", {"status": "ok", "fitness": 0.2}, cfg(0.2)),
        "a": _record("a", {"status": "ok", "fitness": 0.1}, cfg(0.1)),
        "c": _record("c", {"status": "failed", "reason": "nan"}, cfg(0.3)),
        "d": _record("d", {"_step": 1}, cfg(0.4), state="crashed"),
    }
    space = from_mapping({}).search_space()
    rows, incomplete = summary_rows(records, space)
    assert [r["name"] for r in rows] == ["a", "b", "c"] and rows[2]["fitness"] == float("inf")
    assert incomplete == ["d"]
    table = markdown_table(columns(space), rows, "t").splitlines()
    assert table[2] == "| name | n_layers | hidden_size | activation | dropout | fitness |"
    assert table[4] == "| a | 1 | 16 | relu | 0.1 | 0.1 |"


# --------------------------------------------------------------- the real wandb: imports and failures

_SCRIPT = textwrap.dedent("""
    import json, logging, os, socket, sys
    from pathlib import Path
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    import workflow.tracking.evaluation
    from workflow.evaluate import EvaluationSpec, run_pack
    from workflow.config import from_mapping
    from tests.support import genes
    from workflow.records import Candidate
    from tests.support import genes
    from workflow.wandb_driver.readback import offline_files
    from workflow.tracking.spec import TrackingSpec

    tmp, case = Path(sys.argv[1]), sys.argv[2]

    def evaluate(tracking):
        spec = EvaluationSpec(config.task, config.train, tracking=tracking)
        return run_pack([cand], spec, str(tmp / "evals"))[0].status
    config = from_mapping({"task": {"n_samples": 200}, "train": {"epochs": 1}})
    cand = Candidate(name="fitness-1-1", hparams=genes(1, 16, "relu", 0.0), generation=1, index=1,
                     optimizer="ga", seed=1)
    online = TrackingSpec(mode="online", project="p", entity=None, group="g", dir=str(tmp / "run" / "wandb"),
                          tag="t")
    out = {"after_import": "wandb" in sys.modules}
    if case == "a":
        out["disabled"] = evaluate(None)
        out["disabled_imports_wandb"] = "wandb" in sys.modules
        # A run directory W&B cannot write into (its path goes through a regular file).
        (tmp / "file").write_text("x")
        bad = TrackingSpec(mode="offline", project="p", entity=None, group="g",
                           dir=str(tmp / "file" / "wandb"), tag="t")
        out["unwritable"] = evaluate(bad)
        # Online, W&B server unreachable: the run is kept offline at once (no 90 s init timeout).
        os.environ["WANDB_BASE_URL"] = "http://127.0.0.1:9"
        out["online"] = evaluate(online)
    else:
        # Online, server reachable (a listening socket) but no API key: wandb.init fails, the run is kept offline.
        server = socket.create_server(("127.0.0.1", 0))
        os.environ["WANDB_BASE_URL"] = f"http://127.0.0.1:{server.getsockname()[1]}"
        out["online"] = evaluate(online)
        server.close()  # a server that accepts but never answers would hold wandb's exit for 10 s
    out["offline_fallback"] = sorted(offline_files(online.dir))
    print(json.dumps(out))
""")


def test_disabled_imports_no_wandb_and_wandb_failures_never_fail_training(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path / "home"), NETRC=str(tmp_path / "netrc"))
    procs = {}
    for case in ("a", "b"):
        (tmp_path / case).mkdir()
        procs[case] = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(tmp_path / case), case], env=env,
                                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = {case: proc.communicate(timeout=300) for case, proc in procs.items()}
    runs = {}
    for case, (stdout, stderr) in outputs.items():
        assert procs[case].returncode == 0, stderr[-3000:]
        runs[case] = json.loads(stdout.strip().splitlines()[-1]), stderr
    (a, a_err), (b, b_err) = runs["a"], runs["b"]
    assert a["after_import"] is False  # importing workflow.tracking is free
    assert a["disabled"] == "ok" and a["disabled_imports_wandb"] is False
    assert a["unwritable"] == "ok"
    assert re.search(r"W&B: starting the run of fitness-1-1 failed \((NotADirectoryError|FileExistsError)", a_err)
    assert not (tmp_path / "a" / "file").is_dir()
    assert a["online"] == "ok" and a["offline_fallback"] == ["t-fitness-1-1"]
    assert "W&B: cannot reach http://127.0.0.1:9 (ConnectionRefusedError" in a_err
    assert b["online"] == "ok" and b["offline_fallback"] == ["t-fitness-1-1"]
    assert "W&B: online init of t-fitness-1-1 failed (UsageError: No API key configured" in b_err
