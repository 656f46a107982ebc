"""A config written for the reference (jupyterhub-moss 10.1) keeps working, or the hub says why.

Every trait of the reference's spawner class is either honoured, or named in one WARNING line
at start-up with what to use instead; its README example loads without a word.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from batchspawner import SlurmSpawner
from jupyterhub.spawner import Spawner
from support.reference_example import README_EXAMPLE, README_EXAMPLE_7_0_1
from traitlets.config import Config

import jupyterhub_moss
from jupyterhub_moss.batch_script import default_template
from jupyterhub_moss.config import JupyterEnvironment, PartitionConfig, load_partitions
from jupyterhub_moss.hub_config import _report_reference_config
from jupyterhub_moss.reference_config import (
    REFERENCE_ENVIRONMENT_FIELDS,
    REFERENCE_PARTITION_FIELDS,
    REFERENCE_TRAITS,
    startup_messages,
)
from jupyterhub_moss.spawner import MOSlurmSpawner

pytestmark = pytest.mark.unit

SECTIONS = MOSlurmSpawner.section_names()
PACKAGE = Path(jupyterhub_moss.__file__).parent
#: The reference's own configurable traits (listed from jupyterhub-moss 10.1.0, as in 7.0.1).
REFERENCE_OWN = {"partitions", "batch_script", "slurm_info_cmd", "slurm_info_resources",
                 "singularity_cmd"}  # fmt: skip
BATCHSPAWNER_TEMPLATE = SlurmSpawner.class_traits()["batch_script"].default_value

# trait → (a value a reference config could give it, a word the start-up line must name:
# the replacement; None when the trait is honoured and nothing is said)
EXPECTED = {
    "partitions": (README_EXAMPLE, None),
    "batch_script": (default_template(), None),
    "slurm_info_cmd": ("sinfo -a -N -h -o '%R %c'", "slurm_commands"),
    "slurm_info_resources": (lambda output: {}, "max_nprocs"),
    "singularity_cmd": (["singularity", "exec"], "container_command = 'singularity exec {image}'"),
    "exec_prefix": ("sudo -E -u {username}", None),
    "req_account": ("physics", None),
    "req_qos": ("normal", None),
    "req_reservation": ("maint", None),
    "req_options": ("--constraint=fast", None),
    "req_memory": ("4G", None),
    "req_gres": ("tmp:10G", None),
    "req_prologue": ("ulimit -c 0", None),
    "req_epilogue": ("echo done", None),
    "req_srun": ("", None),
    "req_keepvars_extra": ("LANG", None),
    "startup_poll_interval": (1.0, None),
    "batchspawner_singleuser_cmd": ("/opt/bin/batchspawner-singleuser", "server_launcher"),
    "req_partition": ("cpu", "default_partition"),
    "req_runtime": ("2:00:00", "max_runtime"),
    "req_nprocs": ("4", "max_nprocs"),
    "req_ngpus": ("1", "max_ngpus"),
    "req_cluster": ("other", "SLURM_CONF"),
    "req_host": ("head", "SLURM_CONF"),
    "req_queue": ("batch", "default_partition"),
    "batch_submit_cmd": ("sbatch --parsable", "slurm_commands"),
    "batch_query_cmd": ("squeue -h -j {job_id}", "slurm_commands"),
    "batch_cancel_cmd": ("scancel {job_id}", "slurm_commands"),
    "state_pending_re": ("^PENDING", "squeue"),
    "state_running_re": ("^RUNNING", "squeue"),
    "state_unknown_re": ("^slurm_load_jobs", "squeue"),
    "state_exechost_re": (r"\s+((?:[\w_-]+\.?)+)$", "squeue"),
    "state_exechost_exp": ("", "squeue"),
}


def config_of(settings: dict, section: str = "MOSlurmSpawner") -> Config:
    config = Config()
    for name, value in settings.items():
        config[section][name] = value
    return config


def texts(config: Config, template_paths=()) -> list[str]:
    return [m.text for m in startup_messages(config, SECTIONS, template_paths)]


def test_the_table_is_every_trait_of_the_reference_spawner_but_jupyterhubs_own():
    inherited = set(SlurmSpawner.class_traits(config=True)) - set(Spawner.class_traits(config=True))
    assert [t.name for t in REFERENCE_TRAITS] == list(EXPECTED)
    assert set(EXPECTED) == REFERENCE_OWN | inherited


#: Fields this package adds to the reference's: a config from the reference leaves them out.
OUR_PARTITION_FIELDS = {
    "groups",
    "field_defaults",
    "locked_fields",
    "gpu_types",
    "gpu_any_type",
}
OUR_ENVIRONMENT_FIELDS = {"groups"}


def test_the_reference_fields_are_ours_but_our_additions():
    assert set(REFERENCE_PARTITION_FIELDS) == set(PartitionConfig.model_fields) - (
        OUR_PARTITION_FIELDS
    )
    assert set(REFERENCE_ENVIRONMENT_FIELDS) == set(JupyterEnvironment.model_fields) - (
        OUR_ENVIRONMENT_FIELDS
    )


@pytest.mark.parametrize("trait", REFERENCE_TRAITS, ids=lambda t: t.name)
def test_each_trait_is_honoured_or_named_with_its_replacement(trait):
    value, replacement = EXPECTED[trait.name]
    said = texts(config_of({trait.name: value}))
    if replacement is None:
        assert said == []
        assert trait.treatment in ("honoured", "differs")
        return
    assert len(said) == 1, said
    (line,) = said
    assert f"c.MOSlurmSpawner.{trait.name} " in line
    assert replacement in line
    assert "\n" not in line


@pytest.mark.parametrize(
    "trait", [t for t in REFERENCE_TRAITS if t.treatment == "replaced"], ids=lambda t: t.name
)
def test_a_trait_said_to_be_unused_is_read_nowhere_in_the_package(trait):
    # if it starts being honoured, the table and the README must say so
    reads = re.compile(rf"\.{trait.name}\b")
    for path in PACKAGE.rglob("*.py"):
        if path.name != "reference_config.py":
            assert not reads.search(path.read_text()), f"{path} reads {trait.name}"


def test_the_readme_examples_load_and_say_nothing():
    for example in (README_EXAMPLE, README_EXAMPLE_7_0_1):
        assert texts(config_of({"partitions": example})) == []
        assert list(load_partitions(example)) == ["partition_1", "partition_2", "partition_3"]


def test_the_published_example_keeps_every_reference_field():
    partitions = load_partitions(README_EXAMPLE_7_0_1)
    for name, raw in README_EXAMPLE_7_0_1.items():
        assert set(raw) == set(REFERENCE_PARTITION_FIELDS)
        environment = partitions[name].jupyter_environments["default"]
        expected = raw["jupyter_environments"]["default"]
        assert set(expected) == set(REFERENCE_ENVIRONMENT_FIELDS)
        assert environment.model_dump(include=set(REFERENCE_ENVIRONMENT_FIELDS)) == expected
        assert environment.groups is None  # ours: offered to everyone
    assert partitions["partition_2"].jupyter_environments["default"].module_list == (
        "JupyterLab/3.6.0",
    )


def test_a_config_with_every_reference_trait_gets_exactly_the_documented_lines():
    settings = {name: value for name, (value, _) in EXPECTED.items()}
    settings["partitions"] = README_EXAMPLE_7_0_1
    said = texts(config_of(settings))
    expected = [name for name, (_, replacement) in EXPECTED.items() if replacement]
    assert len(said) == len(expected)
    for name, line in zip(expected, said, strict=True):
        assert line.startswith(f"jupyterhub_moss: c.MOSlurmSpawner.{name} is not used: ")
        assert EXPECTED[name][1] in line


def test_a_trait_set_in_several_sections_is_named_once_under_the_most_specific():
    config = config_of({"req_runtime": "1:00:00"}, "BatchSpawnerBase")
    config.MOSlurmSpawner.req_runtime = "2:00:00"
    config.SlurmSpawner.batch_query_cmd = "squeue"
    assert [line.split(" is not used")[0] for line in texts(config)] == [
        "jupyterhub_moss: c.MOSlurmSpawner.req_runtime",
        "jupyterhub_moss: c.SlurmSpawner.batch_query_cmd",
    ]


def test_the_singleuser_wrapper_is_honoured_with_batchspawners_launcher():
    config = config_of({"batchspawner_singleuser_cmd": "/opt/bs/batchspawner-singleuser"})
    config.MOSlurmSpawner.server_launcher = "batchspawner"
    assert texts(config) == []


def test_the_suggested_container_command_keeps_the_admins_words():
    config = config_of({"singularity_cmd": ["apptainer", "exec", "--bind", "/my data"]})
    (line,) = texts(config)
    assert "container_command = \"apptainer exec --bind '/my data' {image}\"" in line


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (BATCHSPAWNER_TEMPLATE, "does not have: cmd, homedir, keepvars, options;"),
        ("#!/bin/bash\n{{ partition }} {{ environment_path }}\n", "does not have: environment_"),
        ("#!/bin/bash\n{% if partition %}\n", "is not a valid template (line 2:"),
        ("#!/bin/bash\n{% for w in range(2) %}{{ w }}{% endfor %}{{ command|words }}\n", None),
    ],
)
def test_a_batch_script_our_context_cannot_render_is_named_at_start_up(template, expected):
    said = texts(config_of({"batch_script": template}, "SlurmSpawner"))
    if expected is None:
        assert said == []
        return
    (line,) = said
    assert line.startswith("jupyterhub_moss: c.SlurmSpawner.batch_script ")
    assert expected in line
    assert "batch_script.sh.j2" in line


def test_the_references_form_template_in_template_paths_is_named(tmp_path):
    (tmp_path / "with").mkdir()
    (tmp_path / "with" / "option_form.html").write_text("{% extends 'x' %}")
    (tmp_path / "without").mkdir()
    said = texts(Config(), [str(tmp_path / "without"), str(tmp_path / "with")])
    (line,) = said
    assert str(tmp_path / "with" / "option_form.html") in line
    assert "moss_form.html" in line


def fake_hub(config: Config, logger: logging.Logger) -> SimpleNamespace:
    return SimpleNamespace(
        config=config, spawner_class=MOSlurmSpawner, template_paths=[], log=logger
    )


def test_each_line_is_logged_once_per_hub(caplog):
    config = config_of({"slurm_info_cmd": "sinfo", "req_ngpus": "2"})
    hub = fake_hub(config, logging.getLogger("test-reference-hub"))
    with caplog.at_level(logging.INFO, logger="test-reference-hub"):
        _report_reference_config(hub)
        _report_reference_config(hub)  # a second call changes nothing
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in lines] == [logging.WARNING, logging.WARNING]
    assert "c.MOSlurmSpawner.slurm_info_cmd" in lines[0][1]
    assert "c.MOSlurmSpawner.req_ngpus" in lines[1][1]


def test_a_hub_without_reference_settings_logs_nothing(caplog):
    hub = fake_hub(config_of({"partitions": README_EXAMPLE}), logging.getLogger("test-quiet"))
    with caplog.at_level(logging.DEBUG, logger="test-quiet"):
        _report_reference_config(hub)
    assert caplog.records == []
