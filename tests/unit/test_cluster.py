"""Parsing what Slurm answers and checking requests against it (captured command output, no cluster)."""

import pytest

from workflow.cluster import (
    Partition,
    check_request,
    parse_gpus,
    parse_max_array_size,
    parse_sacct,
    parse_sinfo,
    parse_slurm_time,
    validate_slurm_strings,
)
from workflow.config import from_mapping
from workflow.errors import ConfigError


@pytest.mark.parametrize(("text", "minutes"), [
    ("infinite", None), ("30", 30), ("30:00", 30), ("01:30:00", 90), ("1-00:00:00", 1440), ("2-12", 3600),
    ("0:30", 1), ("1-0:10", 1450),
])
def test_parse_slurm_time(text, minutes):
    assert parse_slurm_time(text) == minutes


@pytest.mark.parametrize(("gres", "gpus"), [("gpu:2", 2), ("(null)", 0), ("gpu:a100:4(S:0-1)", 4),
                                            ("gpu:1,shard:8", 1), ("", 0)])
def test_parse_gpus(gres, gpus):
    assert parse_gpus(gres) == gpus


def test_parse_sinfo():
    parts = parse_sinfo("gpu|infinite|gpu:2|up\ngpu2|2:00:00|gpu:2|up\ncpu|1-00:00:00|(null)|down\n")
    assert parts["gpu"] == Partition("gpu", None, 2, True)
    assert parts["gpu2"].time_limit_min == 120
    assert parts["cpu"] == Partition("cpu", 1440, 0, False)


def test_parse_sacct_expands_pending_arrays_and_keeps_first_word():
    text = "41_0|COMPLETED\n41_1|CANCELLED by 0\n41_[2-4%2]|PENDING\n41_1.batch|CANCELLED\n42|OUT_OF_MEMORY\n"
    assert parse_sacct(text) == {"41_0": "COMPLETED", "41_1": "CANCELLED", "41_2": "PENDING", "41_3": "PENDING",
                                 "41_4": "PENDING", "42": "OUT_OF_MEMORY"}


def test_parse_sacct_takes_a_memory_kill_from_the_srun_step():
    text = "50_2|FAILED\n50_2.batch|FAILED\n50_2.extern|COMPLETED\n50_2.0|OUT_OF_MEMORY\n50_3|FAILED\n50_3.0|FAILED\n"
    assert parse_sacct(text) == {"50_2": "OUT_OF_MEMORY", "50_3": "FAILED"}


def test_parse_max_array_size():
    assert parse_max_array_size("MaxArraySize            = 1001\nMaxJobCount = 10000\n") == 1001
    assert parse_max_array_size("nothing") == 1001


PARTS = {"gpu": Partition("gpu", 120, 2, True), "cpu": Partition("cpu", None, 0, True)}


def _config(**slurm):
    return from_mapping({"backend": {"name": "slurm"}, "slurm": slurm})


@pytest.mark.parametrize(("slurm", "message"), [
    ({"partition": "nope"}, "config error: slurm.partition='nope': no such partition on this cluster; "
                            "available: cpu, gpu"),
    ({"partition": "gpu", "time_min": 500}, "config error: slurm.time_min=500: above partition gpu's time "
                                            "limit (120 min)"),
    ({"partition": "cpu", "gpus_per_task": 1}, "config error: slurm.gpus_per_task=1: partition cpu has 0 GPUs "
                                               "per node"),
])
def test_check_request_refuses_what_the_cluster_cannot_do(slurm, message):
    with pytest.raises(ConfigError) as info:
        check_request(_config(**slurm), PARTS)
    assert str(info.value) == message


def test_check_request_accepts_a_fitting_request():
    check_request(_config(partition="gpu", time_min=60, gpus_per_task=2), PARTS)


@pytest.mark.parametrize(("slurm", "key"), [
    ({"partition": "gpu;rm -rf ~"}, "slurm.partition"),
    ({"partition": "$(id)"}, "slurm.partition"),
    ({"account": "proj`id`"}, "slurm.account"),
    ({"qos": "high normal"}, "slurm.qos"),
    ({"additional_parameters": {"constraint": "a100 && rm"}}, "slurm.additional_parameters.constraint"),
    ({"additional_parameters": {"--evil": "x"}}, "slurm.additional_parameters.--evil"),
    ({"setup": ["module load cuda/12", "source ~/.bashrc; curl x | sh"]}, "slurm.setup[1]"),
    ({"setup": ["export X=$HOME"]}, "slurm.setup[0]"),
])
def test_hostile_strings_never_reach_sbatch(slurm, key):
    with pytest.raises(ConfigError) as info:
        validate_slurm_strings(_config(**slurm))
    assert str(info.value).startswith(f"config error: {key}=")


def test_safe_strings_pass():
    validate_slurm_strings(_config(partition="gpu-a100", account="proj_42", qos="normal",
                                   additional_parameters={"constraint": "a100", "mail-type": "END"},
                                   setup=["module load cuda/12.4", "source /home/u/venv/bin/activate"]))


def test_sinfo_is_asked_once_inside_a_sinfo_once_block_and_every_time_outside(monkeypatch):
    import workflow.cluster as cluster

    asked = []

    def run(command, timeout=30.0):
        asked.append(command[0])
        if len(asked) == 3:
            raise cluster.ClusterError("sinfo: no answer")  # a failed ask is not remembered
        return "gpu|infinite|gpu:2|up\n"

    monkeypatch.setattr(cluster, "_run", run)
    cluster.query_partitions()
    cluster.query_partitions()
    assert asked == ["sinfo", "sinfo"]
    with cluster.sinfo_once():
        with pytest.raises(cluster.ClusterError):
            cluster.query_partitions()
        first = cluster.query_partitions()
        first.clear()  # a caller's copy: the kept answer stays whole
        with cluster.sinfo_once():
            assert set(cluster.query_partitions()) == {"gpu"}
        assert set(cluster.query_partitions()) == {"gpu"}
    assert len(asked) == 4
    cluster.query_partitions()
    assert len(asked) == 5
