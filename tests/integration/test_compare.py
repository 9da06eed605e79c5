"""BO and the comparison end to end on this machine: the CLI, the local backend, real (tiny) training."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"
PREFIX = {"ga": "fitness-", "bo": "BO-Iteration-", "random": "Random-Iteration-"}


def cli(*args, check=True, env=None):
    proc = subprocess.run([sys.executable, "-m", "workflow", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


pytestmark = pytest.mark.slow  # the module's shared comparison: 6 runs of real training


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    # Smoke size: 4 x 2 evaluations per run; BO's second batch is GP-chosen (4 random points first).
    out = tmp_path_factory.mktemp("compare") / "cmp"
    proc = cli("compare", SMOKE, "optimizer.bo_initial_points=4", "--optimizers", "ga,bo,random", "--seeds", 2,
               "--run-dir", out)
    return out, proc


def test_compare_writes_table_plot_and_merged_top_ten(comparison):
    out, proc = comparison
    runs = {f"{opt}-seed{seed}" for opt in PREFIX for seed in (1, 2)}  # smoke.yaml has seed 1
    assert {p.name for p in out.iterdir()} == runs | {"compare"}
    results = {name: rows(out / name / "results.csv") for name in runs}
    for name, table in results.items():
        opt = name.split("-")[0]
        assert len(table) == 8 and all(r["name"].startswith(PREFIX[opt]) for r in table), name
    assert [r["name"] for r in results["bo-seed1"]] == [f"BO-Iteration-{n}" for n in range(1, 9)]

    summary = rows(out / "compare" / "summary.csv")
    assert [r["optimizer"] for r in summary] == ["ga", "bo", "random"]
    for row in summary:
        bests = [min(float(r["fitness"]) for r in results[f"{row['optimizer']}-seed{s}"]) for s in (1, 2)]
        assert (row["runs"], row["seeds"], row["evaluations_per_run"]) == ("2", "1 2", "8")
        assert float(row["best_min"]) == pytest.approx(min(bests))
        assert float(row["best_max"]) == pytest.approx(max(bests))
        assert float(row["best_median"]) == pytest.approx(sum(bests) / 2)
    md = (out / "compare" / "summary.md").read_text()
    assert md.count("\n| ga | ") == 3 and "\n| ga | 2 | 1 2 | 8 | " in md  # one summary row, two run rows
    assert (out / "compare" / "best_so_far.png").read_bytes()[:4] == b"\x89PNG"
    assert str(out / "compare" / "top10.md") in proc.stdout

    top = (out / "compare" / "top10.md").read_text().splitlines()
    assert top[2] == "| name | search | seed | n_layers | hidden_size | activation | dropout | fitness |"
    body = [line.split(" | ") for line in top[4:]]
    assert len(body) == 10
    every = sorted((float(r["fitness"]), r["name"], name) for name, table in results.items() for r in table)
    assert [float(cells[-1].rstrip(" |")) for cells in body] == pytest.approx([f for f, _, _ in every[:10]],
                                                                               rel=1e-4)
    for cells in body:
        name, opt, seed = cells[0].lstrip("| "), cells[1], cells[2]
        assert name.startswith(PREFIX[opt]) and any(r["name"] == name for r in results[f"{opt}-seed{seed}"])


def test_compare_again_skips_finished_runs_and_bo_resumes_from_its_journal(comparison):
    out, _ = comparison
    journals = {p: p.read_text() for p in out.glob("*/journal.jsonl")}
    proc = cli("compare", SMOKE, "optimizer.bo_initial_points=4", "--optimizers", "ga,bo,random", "--seeds", 2,
               "--run-dir", out)
    assert proc.stderr.count("already finished") == 6
    assert {p: p.read_text() for p in out.glob("*/journal.jsonl")} == journals
    # Replays the journal (the GP-chosen batch included) into a fresh BO: it must propose the same points.
    cli("resume", out / "bo-seed1", "--no-report")
    status = json.loads(cli("status", out / "bo-seed1", "--json").stdout)
    assert status["optimizer"] == "bo" and status["finished"] is True
    assert status["evaluations"]["done"] + status["evaluations"]["failed"] == 8


def test_compare_rejects_unknown_optimizers(tmp_path):
    proc = cli("compare", SMOKE, "--optimizers", "ga,sgd", "--run-dir", tmp_path / "x", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: config error: --optimizers='sgd': unknown optimizer; allowed: ga, bo, random"]
    assert not (tmp_path / "x").exists()


def test_bo_run_crashes_and_resumes_with_bo_iteration_rows(tmp_path):
    run_dir = tmp_path / "bo"
    # SIGKILL right after the second batch is asked (recorded, not evaluated): resume re-proposes it.
    crashed = cli("run", SMOKE, "optimizer.name=bo", "--run-dir", run_dir, check=False,
                  env={"GASLURM_CRASH_AT": "after-ask:2"})
    assert crashed.returncode == -9
    assert len(rows(run_dir / "results.csv")) == 4
    proc = cli("resume", run_dir)
    assert "finished: 8 evaluations" in proc.stdout
    table = rows(run_dir / "results.csv")
    assert [r["name"] for r in table] == [f"BO-Iteration-{n}" for n in range(1, 9)]
    assert all(r["search"] == "bo" and r["status"] == "ok" for r in table)
    assert [(r["generation"], r["index"]) for r in table[4:]] == [("2", str(i)) for i in range(1, 5)]
    assert re.search(r"best BO-Iteration-\d fitness", proc.stdout)
    assert (run_dir / "report" / "top10.md").read_text().count("| BO-Iteration-") == 8
