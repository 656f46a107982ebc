"""The admin's partitions config: the reference's documented example loads; mistakes are named."""

from __future__ import annotations

import copy

import pytest
from support.reference_example import README_EXAMPLE

from jupyterhub_moss.config import (
    JupyterEnvironment,
    PartitionConfig,
    PartitionConfigError,
    load_partitions,
)

pytestmark = pytest.mark.unit


def test_readme_example_loads_with_every_value_kept():
    partitions = load_partitions(README_EXAMPLE)
    assert list(partitions) == ["partition_1", "partition_2", "partition_3"]
    first = partitions["partition_1"]
    assert first.architecture == "x86_86"
    assert (first.max_nprocs, first.max_ngpus, first.max_runtime) == (28, 0, 43200)
    assert first.jupyter_environments["default"].path == "/env/path/bin/"
    assert partitions["partition_2"].gres_for(2) == "gpu:V100-SXM2-32GB:2"
    assert partitions["partition_3"].simple is False


def test_minimal_partition_leaves_limits_to_slurm():
    partitions = load_partitions({"cpu": {"jupyter_environments": {"py": {"modules": "python"}}}})
    cpu = partitions["cpu"]
    assert cpu.gpu is None and cpu.max_nprocs is None and cpu.max_ngpus is None
    assert cpu.max_runtime is None
    assert cpu.simple is True  # the reference's documented default
    assert cpu.jupyter_environments["py"].add_to_path is True


def test_environment_kinds():
    image = JupyterEnvironment(path="/images/jupyter.sif")
    folder = JupyterEnvironment(path="/opt/env/bin", modules="gcc  python/3.11")
    assert image.is_container and not folder.is_container
    assert folder.module_list == ("gcc", "python/3.11")


def broken(partition: str, **changes) -> dict:
    config = copy.deepcopy(README_EXAMPLE)
    for key, value in changes.items():
        if value is ...:
            del config[partition][key]
        else:
            config[partition][key] = value
    return config


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            broken("partition_2", gpu="gpu:V100"),
            "partition 'partition_2': field 'gpu': must contain '{}' "
            "(a --gres template such as 'gpu:V100:{}')",
        ),
        (broken("partition_2", gpu="gpu:{}:{}"), "field 'gpu': must be one --gres word"),
        (broken("partition_2", gpu="gpu:{} x"), "field 'gpu': must be one --gres word"),
        (
            broken("partition_1", max_nproc=4),
            "partition 'partition_1': field 'max_nproc': unknown field (allowed: architecture,",
        ),
        (
            broken("partition_1", max_nprocs=0),
            "partition 'partition_1': field 'max_nprocs': must be at least 1, got 0",
        ),
        (
            broken("partition_1", max_ngpus=-1),
            "partition 'partition_1': field 'max_ngpus': must be at least 0, got -1",
        ),
        (
            broken("partition_1", max_runtime=0),
            "partition 'partition_1': field 'max_runtime': must be at least 1, got 0",
        ),
        (
            broken("partition_1", max_nprocs="28"),
            "partition 'partition_1': field 'max_nprocs': must be an integer, got '28'",
        ),
        (
            broken("partition_1", simple="yes"),
            "partition 'partition_1': field 'simple': must be True or False, got 'yes'",
        ),
        (
            broken("partition_1", jupyter_environments=...),
            "partition 'partition_1': field 'jupyter_environments': is required",
        ),
        (
            broken("partition_1", jupyter_environments={}),
            "partition 'partition_1': field 'jupyter_environments': must not be empty",
        ),
        (
            broken("partition_1", jupyter_environments={"bare": {"description": "nothing"}}),
            "partition 'partition_1': field 'jupyter_environments.bare': "
            "at least one of 'path' and 'modules' must be set",
        ),
        (
            broken("partition_1", jupyter_environments={"x": {"path": "/a", "venv": "/b"}}),
            "field 'jupyter_environments.x.venv': unknown field (allowed: description, path,",
        ),
        (
            broken("partition_1", jupyter_environments={"x": {"path": "/a\nrm -rf ~"}}),
            "field 'jupyter_environments.x.path': must not contain control characters",
        ),
        ({"bad name": README_EXAMPLE["partition_1"]}, "partition 'bad name': the name must be"),
        ({"p": ["not", "a", "dict"]}, "partition 'p': must be a dict of fields, not list"),
        ({}, "no partitions configured"),
    ],
)
def test_broken_config_names_partition_field_and_expectation(config, expected):
    with pytest.raises(PartitionConfigError) as caught:
        load_partitions(config)
    assert expected in str(caught.value)


def test_every_problem_is_reported_at_once_one_per_line():
    config = broken("partition_1", gpu="gpu", max_nprocs=-3)
    config["partition_3"]["colour"] = "blue"
    with pytest.raises(PartitionConfigError) as caught:
        load_partitions(config)
    problems = caught.value.problems
    assert len(problems) == 3
    assert str(caught.value).splitlines()[1:] == problems
    assert any("'partition_3'" in p and "'colour'" in p for p in problems)


def test_partition_config_is_a_pydantic_model_that_rejects_unknown_fields():
    with pytest.raises(ValueError, match="extra"):
        PartitionConfig(jupyter_environments={"a": {"path": "/x"}}, venv="/old")


def test_not_a_dict_at_all():
    with pytest.raises(PartitionConfigError, match="must be a dict of partitions"):
        load_partitions(["partition_1"])  # type: ignore[arg-type]
