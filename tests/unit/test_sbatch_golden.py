"""The sbatch script submitit generates from our config, pinned against a golden file (as submitit does).

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/unit/test_sbatch_golden.py``.
"""

import os
from pathlib import Path

import pytest
from submitit.slurm.slurm import _make_sbatch_string

from workflow.backends.slurm import executor_parameters
from workflow.cluster import validate_slurm_strings
from workflow.config import from_mapping
from workflow.errors import ConfigError

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _render(config, tag="exp.g3.0123456789", count=5):
    params = executor_parameters(config, tag)
    return _make_sbatch_string(command="/venv/bin/python -u -m submitit.core._submit /runs/exp/slurm/%j",
                               folder="/runs/exp/slurm/%j", map_count=count, **params)


def _check(name, text):
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_array_script_matches_golden():
    config = from_mapping({
        "name": "exp",
        "train": {"accelerator": "gpu", "devices": 2},
        "slurm": {"partition": "gpu2", "cpus_per_task": 4, "mem_gb": 16, "time_min": 120,
                  "array_parallelism": 3, "account": "proj_42", "qos": "normal",
                  "additional_parameters": {"constraint": "a100"},
                  "setup": ["module load cuda/12.4", "source /home/user/venv/bin/activate"]},
    })
    validate_slurm_strings(config)
    _check("array_gpu.sbatch", _render(config))


def test_cpu_ddp_request_is_derived_from_train_devices():
    config = from_mapping({"train": {"accelerator": "cpu", "devices": 2}, "slurm": {"cpus_per_task": 1}})
    params = executor_parameters(config, "t")
    assert params["cpus_per_task"] == 2 and "gpus_per_node" not in params
    _check("array_cpu_ddp.sbatch", _render(config, tag="t", count=2))


@pytest.mark.parametrize("hostile", ["gpu\n#SBATCH --uid=0", "gpu'; rm -rf ~; '", "../../etc", "gpu $(id)"])
def test_hostile_partition_is_rejected_before_rendering(hostile):
    config = from_mapping({"slurm": {"partition": hostile}})
    with pytest.raises(ConfigError, match="slurm.partition"):
        validate_slurm_strings(config)
