"""The house's layering: every package lies on one layer, every module imports only modules of its own layer or
lower ones, and nothing loops.

Every ``import`` of the package is read with ``ast`` (top level, inside functions, under ``TYPE_CHECKING``,
relative ones), so an import hidden in a function counts like any other. Importing ``a.b.c`` also runs the
packages ``a`` and ``a.b``, so those count too. A failure prints the offending chain.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "workflow"

#: The declared layers, lowest first: a module belongs to the most specific prefix listed. A package lies on one
#: layer: only ``workflow`` and its direct children (``workflow.<name>``) are listed, and a package whose halves
#: belong on two layers is two packages.
LAYERS: dict[str, int] = {
    # L0: plain values and tables everyone shares
    "workflow": 0, "workflow.errors": 0, "workflow.records": 0, "workflow.faults": 0, "workflow.space": 0,
    "workflow.tasks": 0, "workflow.logs": 0, "workflow.stopping": 0, "workflow.extras": 0,
    # L1: the typed configuration
    "workflow.config": 1, "workflow.scoring": 1,
    # L2: pure optimizers, the run directory, pure tables, what the cluster says, data files
    "workflow.core": 2, "workflow.store": 2, "workflow.tables": 2, "workflow.front": 2, "workflow.cluster": 2,
    "workflow.packing": 2, "workflow.datasets": 2,
    # L3: the compute side: what an evaluation runs (objectives, the built-in trainer, W&B's compute half)
    "workflow.evaluate": 3, "workflow.objectives": 3, "workflow.trainer": 3, "workflow.tracking": 3,
    # L4: where evaluations run
    "workflow.backends": 4,
    # L5: the one loop, and the checks made before it starts
    "workflow.driver": 5, "workflow.preflight": 5,
    # L6: what watches or combines runs: islands, W&B's driver half, report, status, progress
    "workflow.islands": 6, "workflow.wandb_driver": 6, "workflow.report": 6, "workflow.status": 6,
    "workflow.progress": 6,
    # L7: entry points
    "workflow.compare": 7, "workflow.session": 7, "workflow.api": 7, "workflow.cli": 7, "workflow.__main__": 7,
}

#: What a Slurm task unpickles and runs, and what it must never pull in.
COMPUTE_ROOTS = ("workflow.backends.slurm_task", "workflow.evaluate")
DRIVER_SIDE = ("workflow.driver", "workflow.islands", "workflow.report", "workflow.status", "workflow.compare",
               "workflow.cli", "workflow.session", "workflow.progress", "workflow.preflight",
               "workflow.wandb_driver")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer_of(module: str, layers: dict[str, int] | None = None) -> int:
    layers = LAYERS if layers is None else layers
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in layers:
            return layers[prefix]
    raise AssertionError(f"{module} is in no declared layer: add it to LAYERS in {__file__}")


def top_package(module: str) -> str:
    """``workflow.<name>``: the top-level package (or module) ``module`` belongs to; ``workflow`` itself."""
    return ".".join(module.split(".")[:2])


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _with_parents(target: str) -> Iterator[str]:
    parts = target.split(".")
    for end in range(1, len(parts) + 1):
        name = ".".join(parts[:end])
        if name in MODULES:
            yield name


#: The package root may re-export an entry point lazily: an import inside its module-level ``__getattr__``
#: (PEP 562) runs only when a user asks ``workflow.search``, never when a module of the package imports
#: ``workflow`` (which every module does, as the parent package), so it is not an edge. Only there: the same
#: import at the root's top level, or inside any other function, counts like any other.
LAZY_ROOT = "workflow"


def _lazy_reexports(module: str, tree: ast.Module) -> set[int]:
    if module != LAZY_ROOT:
        return set()
    return {id(node) for function in tree.body
            if isinstance(function, ast.FunctionDef) and function.name == "__getattr__"
            for node in ast.walk(function)}


def imports_of(module: str) -> set[str]:
    """The package's modules that importing ``module`` runs directly (parent packages included)."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    lazy = _lazy_reexports(module, tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in lazy:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_with_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            found.update(_with_parents(base))
            for alias in node.names:  # `from package import submodule`
                if f"{base}.{alias.name}" in MODULES:
                    found.update(_with_parents(f"{base}.{alias.name}"))
    found.discard(module)
    # A package's own __init__ runs before its submodules: not an edge worth reporting from inside it.
    return {m for m in found if not (module.startswith(m + ".") and layer_of(m) <= layer_of(module))}


GRAPH: dict[str, set[str]] = {m: imports_of(m) for m in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def straddling(layers: dict[str, int], modules: Iterable[str]) -> list[str]:
    """LAYERS entries below a top-level package, and modules on another layer than their top-level package."""
    found = [f"{name} (L{layers[name]}) is listed inside {top_package(name)} (L{layer_of(top_package(name), layers)})"
             for name in sorted(layers) if name.count(".") > 1]
    found += [f"{m} (L{layer_of(m, layers)}) lies in {top_package(m)} (L{layer_of(top_package(m), layers)})"
              for m in sorted(modules) if layer_of(m, layers) != layer_of(top_package(m), layers)]
    return found


def test_every_package_lies_on_one_layer():
    found = straddling(LAYERS, MODULES)
    assert not found, ("a package straddles layers (split it into one package per layer, as tracking and "
                       "wandb_driver are):\n" + "\n".join(found))


def upward(graph: dict[str, set[str]]) -> list[str]:
    return [f"{m} (L{layer_of(m)}) -> {t} (L{layer_of(t)})"
            for m in sorted(graph) for t in sorted(graph[m]) if layer_of(t) > layer_of(m)]


def test_no_import_goes_up_a_layer():
    found = upward(GRAPH)
    assert not found, "imports that go up a layer:\n" + "\n".join(found)


def _find_cycle() -> list[str] | None:
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if colour.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in colour and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        colour[node] = 2
        return None

    for start in sorted(GRAPH):
        if start not in colour and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_loop():
    cycle = _find_cycle()
    assert cycle is None, "import loop: " + " -> ".join(cycle or [])


def _reachable(roots: tuple[str, ...]) -> dict[str, str]:
    """{module: the module that first pulled it in}, breadth first from ``roots``."""
    seen = {root: "" for root in roots}
    queue = list(roots)
    while queue:
        node = queue.pop(0)
        for nxt in sorted(GRAPH[node]):
            if nxt not in seen:
                seen[nxt] = node
                queue.append(nxt)
    return seen


def _chain(seen: dict[str, str], module: str) -> str:
    chain = [module]
    while seen[chain[-1]]:
        chain.append(seen[chain[-1]])
    return " -> ".join(reversed(chain))


def test_the_compute_side_imports_nothing_of_the_driver_side():
    seen = _reachable(COMPUTE_ROOTS)
    bad = [_chain(seen, m) for m in sorted(seen) if any(m == d or m.startswith(d + ".") for d in DRIVER_SIDE)]
    assert not bad, "the compute side imports driver-side modules:\n" + "\n".join(bad)


@pytest.mark.parametrize("source, target", [
    ("import workflow.driver\n", "workflow.driver"),
    ("def f():\n    from workflow.cli import main\n", "workflow.cli"),
    ("from . import driver\n", "workflow.driver"),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from workflow.backends.slurm import X\n",
     "workflow.backends.slurm"),
])
def test_a_deliberate_upward_import_is_found_wherever_it_hides(tmp_path, monkeypatch, source, target):
    monkeypatch.setitem(MODULES, "workflow.records", tmp_path / "records.py")
    (tmp_path / "records.py").write_text(source)
    graph = {**GRAPH, "workflow.records": imports_of("workflow.records")}
    assert target in graph["workflow.records"]
    assert f"workflow.records (L0) -> {target} (L{layer_of(target)})" in upward(graph)


@pytest.mark.parametrize("module, source, found", [
    ("workflow", "def __getattr__(name):\n    from workflow import api\n    return api\n", False),
    ("workflow", "from workflow import api\n", True),
    ("workflow", "def helper():\n    import workflow.api\n", True),
    ("workflow.records", "def __getattr__(name):\n    from workflow import api\n    return api\n", True),
])
def test_only_the_roots_getattr_may_reexport_lazily(tmp_path, monkeypatch, module, source, found):
    monkeypatch.setitem(MODULES, module, tmp_path / "__init__.py")
    (tmp_path / "__init__.py").write_text(source)
    assert ("workflow.api" in imports_of(module)) is found


@pytest.mark.parametrize("entry", [("workflow.tracking.readback", 6), ("workflow.trainer.packed", 4),
                                   ("workflow.wandb_driver.check", 6)])
def test_a_deliberate_straddling_entry_is_found(entry):
    # Even an entry that agrees with its package is refused: a module listed alone is one step from straddling.
    name, layer = entry
    found = straddling({**LAYERS, name: layer}, MODULES)
    assert found and all(line.startswith(name) for line in found)
