"""Per-partition limits: the admin's values win, Slurm fills the gaps, nothing crashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.gpu_types import gres_template_from_slurm
from jupyterhub_moss.limits import FALLBACK_MAX_NPROCS, PartitionLimits, merge_partition_limits
from jupyterhub_moss.slurm.models import PartitionInfo
from jupyterhub_moss.slurm.partitions import parse_sinfo

pytestmark = pytest.mark.unit

SLURM_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurm"
ENVS = {"jupyter_environments": {"default": {"path": "/opt/env/bin"}, "mods": {"modules": "py"}}}


def captured(name: str) -> dict[str, PartitionInfo]:
    """Partitions parsed from sinfo output captured on the project's cluster (or hand-made)."""
    return parse_sinfo((SLURM_FIXTURES / f"sinfo_{name}.txt").read_text())


def partitions(**fields_by_name: dict) -> dict:
    return load_partitions({name: {**ENVS, **fields} for name, fields in fields_by_name.items()})


def limits_for(name: str = "p", slurm=None, **fields) -> PartitionLimits:
    return merge_partition_limits(partitions(**{name: fields}), slurm)[name]


def test_everything_missing_from_config_comes_from_slurm():
    gpu = limits_for("gpu", captured("single_idle"))
    assert gpu.state == "up"
    assert gpu.max_nprocs == 8
    assert gpu.max_memory_mb == 8000
    assert gpu.max_runtime == 12 * 3600
    assert gpu.gpu_template == "gpu:fake:{}"
    assert gpu.max_ngpus == 2
    assert gpu.gres_for(2) == "gpu:fake:2"


def test_config_values_override_slurm():
    gpu = limits_for(
        "gpu",
        captured("single_idle"),
        gpu="gpu:{}",
        max_ngpus=1,
        max_nprocs=4,
        max_runtime=1800,
    )
    assert (gpu.gpu_template, gpu.max_ngpus, gpu.max_nprocs, gpu.max_runtime) == (
        "gpu:{}",
        1,
        4,
        1800,
    )
    assert gpu.max_memory_mb == 8000  # memory has no config field: always Slurm's


def test_empty_gpu_template_means_no_gpus_even_when_slurm_has_some():
    cpu = limits_for("cpu", captured("single_idle"), gpu="", max_ngpus=2)
    assert cpu.gpu_template == "" and cpu.max_ngpus == 0 and not cpu.has_gpus
    assert cpu.gres_for(1) == ""


def test_partition_without_gpus_in_slurm_gets_none():
    cpu = limits_for("cpu", captured("multi_idle"))
    assert cpu.gpu_template == "" and cpu.max_ngpus == 0


@pytest.mark.parametrize(
    ("partition", "template", "max_ngpus"),
    [
        ("gpu", "gpu:{}", 6),  # a100 and v100 on one node: any type, all of them
        ("mig", "gpu:{}", 9),
        ("plain", "gpu:{}", 2),  # untyped GPUs
    ],
)
def test_gres_template_from_gpu_types(partition, template, max_ngpus):
    info = captured("handmade_gpu_types")[partition]
    assert gres_template_from_slurm(info) == template
    assert limits_for(partition, captured("handmade_gpu_types")).max_ngpus == max_ngpus


def test_typed_template_counts_only_gpus_of_that_type():
    gpu = limits_for("gpu", captured("handmade_gpu_types"), gpu="gpu:v100:{}")
    assert gpu.max_ngpus == 2


def test_unlimited_runtime_stays_unlimited():
    assert limits_for("plain", captured("handmade_gpu_types")).max_runtime is None


def test_mixed_node_groups_offer_the_largest_node():
    batch = limits_for("batch", captured("handmade_mixed_groups"))
    assert batch.max_nprocs == 64 and batch.max_memory_mb == 512000


def test_partition_unknown_to_slurm_is_kept_not_crashed():
    ghost = limits_for("ghost", captured("single_idle"))
    assert ghost.state == "unknown"
    assert ghost.max_nprocs == FALLBACK_MAX_NPROCS == 1
    assert ghost.max_memory_mb is None and ghost.max_runtime is None
    assert ghost.gpu_template == "" and ghost.max_ngpus == 0


def test_slurm_not_answered_yet_uses_config_and_fallbacks():
    both = merge_partition_limits(
        partitions(a={"max_nprocs": 28, "max_runtime": 3600}, b={"gpu": "gpu:x:{}"}), None
    )
    assert (both["a"].max_nprocs, both["a"].max_runtime, both["a"].state) == (28, 3600, "unknown")
    assert both["b"].gpu_template == "gpu:x:{}" and both["b"].max_ngpus == 0


def test_only_configured_partitions_in_admin_order():
    merged = merge_partition_limits(partitions(gpu={}, debug={}, ghost={}), captured("single_idle"))
    assert list(merged) == ["gpu", "debug", "ghost"]  # Slurm's "cpu" is not offered


def test_partition_state_is_slurms():
    infos = captured("handmade_down_drained")
    merged = merge_partition_limits(partitions(**{name: {} for name in infos}), infos)
    states = {name: limit.state for name, limit in merged.items()}
    assert states["ok"] == "up"
    assert states["closed"] == "down"
    assert states["paused"] == "drain"
    assert states["retired"] == "inactive"
    assert merged["dead"].max_runtime == 30 * 60


def test_descriptive_fields_and_environments_come_from_config():
    p = limits_for(description="Fast", architecture="x86_86", simple=False)
    assert (p.description, p.architecture, p.simple) == ("Fast", "x86_86", False)
    assert list(p.environments) == ["default", "mods"]
    assert p.default_environment_id == "default"


@pytest.mark.parametrize(
    ("max_nprocs", "choices"),
    [
        (1, [1]),
        (2, [1, 2]),
        (3, [1, 2, 3]),
        (8, [1, 2, 4, 8]),
        (28, [1, 2, 4, 7, 14, 28]),
        (128, [1, 2, 4, 32, 64, 128]),
    ],
)
def test_cpu_choices(max_nprocs, choices):
    assert limits_for(max_nprocs=max_nprocs).cpu_choices() == choices


@pytest.mark.parametrize(
    ("max_runtime", "hours", "choices"),
    [
        (None, (1, 2, 4, 6, 8, 12), [3600, 7200, 14400, 21600, 28800, 43200]),
        (12 * 3600, (1, 2, 4, 6, 8, 12), [3600, 7200, 14400, 21600, 28800, 43200]),
        (5 * 3600, (1, 2, 4, 6, 8, 12), [3600, 7200, 14400]),
        (1800, (1, 2), [1800]),  # shorter than every choice: the limit itself
        (None, (2, 1, 2), [3600, 7200]),
    ],
)
def test_runtime_choices(max_runtime, hours, choices):
    assert limits_for(max_runtime=max_runtime).runtime_choices(hours) == choices
