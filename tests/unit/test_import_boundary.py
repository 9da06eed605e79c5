"""The optimizer core and the value types import nothing heavy (checked in a fresh interpreter)."""

import json
import subprocess
import sys

HEAVY = ["torch", "torchvision", "pytorch_lightning", "lightning", "submitit", "mpi4py", "wandb", "skopt"]


def test_core_imports_no_heavy_package():
    code = (
        "import sys, json\n"
        "import workflow.core, workflow.core.ga, workflow.core.random_search, workflow.core.operators\n"
        "import workflow.config, workflow.space, workflow.records\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_core_uses_no_global_random_state():
    from pathlib import Path

    import workflow.core

    for path in Path(workflow.core.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "import random" not in text, path
        assert "np.random.seed" not in text and "np.random.rand" not in text, path
