"""The core install (``pip install gaslurm``, no extras) runs a Python-function search: every process of it (the
script, the CLI, local workers) runs under a finder that refuses torch, Lightning, torchvision, wandb and
mpi4py as if they were not installed, records each attempt to import one, and the search must succeed without
any. Pre-flight refuses what needs an extra (the built-in MLP) with one line naming it, creating nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
#: What the extras bring (workflow/extras.py): absent from a core install.
EXTRA_MODULES = ("torch", "lightning", "pytorch_lightning", "torchvision", "wandb", "mpi4py")

#: Put first on sys.path as sitecustomize, so every Python process of the test (workers included) has it.
SITECUSTOMIZE = f"""
import atexit, importlib.abc, json, os, sys

EXTRA_MODULES = {EXTRA_MODULES!r}
LOG = os.environ["CORE_INSTALL_LOG"]


class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in EXTRA_MODULES:
            with open(LOG, "a") as f:
                f.write(json.dumps({{"attempt": name, "pid": os.getpid()}}) + "\\n")
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())


@atexit.register
def _loaded():
    found = sorted(m for m in sys.modules if m.partition(".")[0] in EXTRA_MODULES)
    with open(LOG, "a") as f:
        f.write(json.dumps({{"exit": os.getpid(), "loaded": found}}) + "\\n")
"""

SCRIPT = """
import sys
import workflow


def make_objective(target):
    def objective(hparams, context):          # a closure: pickled by value for the local workers
        return {"val_loss": (hparams["x"] - target) ** 2 + hparams["n"] / 10}
    return objective


if __name__ == "__main__":
    backend = sys.argv[1]
    study = workflow.search(make_objective(0.25), {"x": {"type": "float", "low": -1.0, "high": 1.0},
                                                   "n": {"type": "int", "low": 0, "high": 4}},
                            metric="val_loss", run_dir=sys.argv[2], seed=1,
                            optimizer={"population_size": 4, "generations": 2},
                            backend={"name": backend, "workers": 2})
    print("RESULT", len(study.results), sum(r.ok for r in study.results), study.best.name)
"""

OBJECTIVE = """
def evaluate(hparams, context):
    return {"val_loss": (hparams["x"] - 0.25) ** 2 + hparams["n"] / 10}
"""


def _core(tmp_path: Path) -> tuple[dict[str, str], Path]:
    site = tmp_path / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "imports.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "CORE_INSTALL_LOG": str(log)}
    return env, log


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def _assert_core_only(log: Path, out: subprocess.CompletedProcess[str]) -> None:
    lines = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    attempts = [line["attempt"] for line in lines if "attempt" in line]
    loaded = [m for line in lines if "exit" in line for m in line["loaded"]]
    assert [line for line in lines if "exit" in line], "the finder never ran: " + out.stderr[-2000:]
    assert attempts == [], f"tried to import what only an extra installs: {sorted(set(attempts))}"
    assert loaded == []


def test_a_python_function_search_runs_from_a_script_without_the_extras(tmp_path):
    (tmp_path / "search.py").write_text(SCRIPT)
    for backend in ("inline", "local"):
        env, log = _core(tmp_path / backend)
        out = _run(["search.py", backend, str(tmp_path / "runs" / backend)], env, tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "RESULT 8 8 " in out.stdout, out.stdout + out.stderr[-3000:]
        _assert_core_only(log, out)


def test_the_cli_runs_a_function_objective_config_without_the_extras(tmp_path):
    (tmp_path / "objectives").mkdir()
    (tmp_path / "objectives" / "mine.py").write_text(OBJECTIVE)
    config = {"name": "core", "seed": 0,
              "objective": {"kind": "python", "function": "mine:evaluate", "path": str(tmp_path / "objectives"),
                            "metric": "val_loss"},
              "space": {"x": {"type": "float", "low": -1.0, "high": 1.0}, "n": {"type": "int", "low": 0, "high": 4}},
              "optimizer": {"name": "ga", "population_size": 4, "generations": 2},
              "backend": {"name": "local", "workers": 2}}
    (tmp_path / "core.yaml").write_text(yaml.safe_dump(config))
    env, log = _core(tmp_path)
    out = _run(["-m", "workflow", "run", "core.yaml", "--run-dir", "runs/core"], env, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "finished: 8 evaluations (0 failed)" in out.stdout, out.stdout + out.stderr[-3000:]
    assert (tmp_path / "runs" / "core" / "report" / "top10.md").exists()
    _assert_core_only(log, out)


def test_the_built_in_mlp_without_torch_is_one_line_naming_the_extra(tmp_path):
    env, log = _core(tmp_path)
    out = _run(["-m", "workflow", "run", str(ROOT / "configs" / "smoke.yaml"), "--run-dir", "runs/smoke"], env,
               tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert "pip install 'gaslurm[mlp]'" in out.stderr and "objective.kind='mlp'" in out.stderr, out.stderr
    assert not (tmp_path / "runs").exists()
    assert '"attempt": "torch"' in log.read_text()  # the finder was asked: it is what refused


def test_the_same_refusal_from_python(tmp_path):
    env, _ = _core(tmp_path)
    code = textwrap.dedent(f"""
        import workflow
        from workflow.errors import ConfigError
        try:
            workflow.search(None, config={str(ROOT / "configs" / "smoke.yaml")!r}, run_dir="runs/smoke")
        except ConfigError as exc:
            print("REFUSED", exc)
    """)
    out = _run(["-c", code], env, tmp_path)
    assert "REFUSED" in out.stdout and "pip install 'gaslurm[mlp]'" in out.stdout, out.stdout + out.stderr
    assert not (tmp_path / "runs").exists()


def test_the_extras_are_what_pyproject_declares_and_make_install_installs_them_all():
    import re

    import tomllib  # Python 3.11

    from workflow.extras import EXTRAS

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements):
        return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].replace("-", "_").lower() for r in requirements}

    extras = project["optional-dependencies"]
    for extra, (_, modules) in EXTRAS.items():
        assert names(extras[extra]) == set(modules), extra
    assert extras["all"] == [f"gaslurm[{','.join(EXTRAS)}]"]
    assert not names(project["dependencies"]) & {m for _, modules in EXTRAS.values() for m in modules}
    assert re.search(r"pip install .*-e \"\.\[all,", (ROOT / "Makefile").read_text())


def test_preflight_names_the_extra_for_tracking_and_islands(monkeypatch):
    from workflow import extras
    from workflow.config import from_mapping
    from workflow.errors import ConfigError
    from workflow.preflight import check_extras

    function = {"kind": "python", "function": "mine:evaluate"}
    space = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
    monkeypatch.setattr(extras, "installed", lambda module: module not in EXTRA_MODULES)
    check_extras(from_mapping({"objective": function, "space": space}))  # the core is enough
    for settings, line in [({"tracking": {"mode": "offline"}}, "tracking.mode='offline': W&B tracking needs wandb"),
                           ({"islands": {"count": 2}}, "islands.count=2: the island model needs mpi4py")]:
        with pytest.raises(ConfigError) as refused:
            check_extras(from_mapping({"objective": function, "space": space, **settings}))
        assert line in str(refused.value) and str(refused.value).endswith(
            f"pip install 'gaslurm[{'wandb' if 'tracking' in settings else 'islands'}]'")
