"""The admin's defaults and locks per field (issue 16): the config model, how they resolve per
partition, how every way in applies them, the start-up check, and how the page shows them.

No hub and no Slurm: a real MOSlurmSpawner with a fixed cluster snapshot, as in test_form.py.
"""

from __future__ import annotations

import asyncio
import re
import types
from datetime import datetime, timezone

import pytest
from bs4 import BeautifulSoup
from traitlets import TraitError

from jupyterhub_moss.config import (
    FieldValues,
    PartitionConfigError,
    load_field_values,
    load_partitions,
)
from jupyterhub_moss.limits import charged_limits, merge_partition_limits
from jupyterhub_moss.options import UserOptionsError, parse_user_options
from jupyterhub_moss.preset_check import preset_problems
from jupyterhub_moss.presets import partition_presets
from jupyterhub_moss.request_values import flatten_form, normalise_query
from jupyterhub_moss.slurm.accounting import JobLimits
from jupyterhub_moss.slurm.models import PartitionInfo
from jupyterhub_moss.slurm.view import ClusterSnapshot
from jupyterhub_moss.spawner import InvalidUserOptions, MOSlurmSpawner

pytestmark = pytest.mark.unit

ENVS = {
    "py": {"description": "Python 3.11", "path": "/opt/py/bin/"},
    "r": {"description": "R 4.3", "modules": "r/4.3"},
}
PARTITIONS = {
    "cpu": {"gpu": "", "max_nprocs": 28, "max_runtime": 86400, "jupyter_environments": ENVS},
    "gpu": {
        "gpu": "gpu:fake:{}",
        "max_ngpus": 2,
        "max_nprocs": 8,
        "max_runtime": 12 * 3600,
        "jupyter_environments": ENVS,
        "field_defaults": {"ngpus": 1, "runtime": "4:00:00"},
        "locked_fields": {"output": True},
    },
}
HUB_DEFAULTS = {"runtime": "2:00:00", "nprocs": 4, "environment_id": "r", "memory": "8G"}
HUB_LOCKS = {"default_url": "/lab"}


def limits(partitions=None, defaults=None, locks=None, slurm=None):
    configs = load_partitions(partitions or PARTITIONS)
    hub_defaults = load_field_values(HUB_DEFAULTS if defaults is None else defaults, "d")
    hub_locks = load_field_values(HUB_LOCKS if locks is None else locks, "l")
    presets = {n: partition_presets(n, c, hub_defaults, hub_locks) for n, c in configs.items()}
    return merge_partition_limits(configs, slurm, presets=presets)


def parse(raw, **kw):
    return parse_user_options(raw, limits(**kw))


def refusal(raw, **kw) -> dict[str, str]:
    with pytest.raises(UserOptionsError) as caught:
        parse(raw, **kw)
    return caught.value.errors


# -- the config model --------------------------------------------------------------------------


def test_field_values_keep_only_what_the_admin_set_in_field_order():
    values = FieldValues(output=False, runtime="1:00:00", nprocs=2)
    assert values.given() == {"runtime": "1:00:00", "nprocs": 2, "output": False}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"runtime": 3600}, "field 'field_defaults.runtime': must be a string, got 3600"),
        ({"nprocs": "4"}, "field 'field_defaults.nprocs': must be an integer, got '4'"),
        ({"nprocs": 0}, "field 'field_defaults.nprocs': must be at least 1, got 0"),
        ({"ngpus": -1}, "field 'field_defaults.ngpus': must be at least 0, got -1"),
        ({"output": "yes"}, "field 'field_defaults.output': must be True or False, got 'yes'"),
        ({"partition": "gpu"}, "field 'field_defaults.partition': unknown field (allowed: runtime"),
    ],
)
def test_hub_wide_values_of_the_wrong_type_name_the_field(raw, expected):
    with pytest.raises(PartitionConfigError) as caught:
        load_field_values(raw, "field_defaults")
    assert expected in str(caught.value)
    assert str(caught.value).startswith("invalid c.MOSlurmSpawner.field_defaults:")


def test_a_partitions_own_values_are_checked_with_the_partitions():
    bad = {"cpu": {**PARTITIONS["cpu"], "locked_fields": {"nproc": 2}}}
    with pytest.raises(PartitionConfigError) as caught:
        load_partitions(bad)
    assert "partition 'cpu': field 'locked_fields.nproc': unknown field" in str(caught.value)


def test_the_spawner_refuses_a_hub_wide_value_of_the_wrong_type():
    expected = "field 'locked_fields.runtime': must be a string"
    with pytest.raises(TraitError, match=re.escape(expected)):
        MOSlurmSpawner(partitions=PARTITIONS, locked_fields={"runtime": 60})


# -- resolved per partition --------------------------------------------------------------------


def test_a_partitions_entry_replaces_the_hubs_for_that_field_only():
    parts = limits()
    cpu, gpu = parts["cpu"].presets, parts["gpu"].presets
    assert cpu.defaults == HUB_DEFAULTS and cpu.locks == HUB_LOCKS
    assert gpu.defaults == {**HUB_DEFAULTS, "runtime": "4:00:00", "ngpus": 1}
    assert gpu.locks == {"output": True, "default_url": "/lab"}
    assert (gpu.where("runtime"), gpu.where("nprocs")) == (" on gpu", "")


def test_a_partition_default_unlocks_a_field_the_hub_locked():
    parts = {**PARTITIONS, "gpu": {**PARTITIONS["gpu"], "field_defaults": {"default_url": "/tree"}}}
    gpu = limits(parts)["gpu"].presets
    assert "default_url" not in gpu.locks and gpu.defaults["default_url"] == "/tree"


# -- every way in: defaults ---------------------------------------------------------------------


def test_defaults_fill_the_fields_a_request_leaves_out():
    cpu = parse({"partition": "cpu"})
    assert (cpu.runtime, cpu.nprocs, cpu.memory, cpu.environment_id) == ("02:00:00", 4, "8G", "r")
    gpu = parse({"partition": "gpu"})
    assert (gpu.runtime, gpu.ngpus, gpu.output) == ("04:00:00", 1, True)


def test_a_value_sent_wins_over_the_default():
    options = parse({"partition": "cpu", "runtime": "30", "nprocs": "1", "memory": "0"})
    assert (options.runtime, options.nprocs, options.memory) == ("00:30:00", 1, "0")


def test_a_default_is_fitted_to_the_limits_the_user_is_charged_under():
    slurm = {"cpu": _info("cpu", cpus=2, max_runtime=3600)}
    # the admin left the CPUs and the run time to Slurm
    parts = {
        "cpu": {
            k: v for k, v in PARTITIONS["cpu"].items() if k not in ("max_nprocs", "max_runtime")
        }
    }
    options = parse({"partition": "cpu"}, partitions=parts, slurm=slurm)
    # Slurm's node has 2 CPUs and the partition allows 1 h: the defaults (4, 2 h) would be refused
    assert (options.nprocs, options.runtime) == (2, "01:00:00")
    part = limits(parts, slurm=slurm)["cpu"]
    narrowed = charged_limits(
        _with_qos(part, "tiny", JobLimits(max_cpus=1, max_memory_mb=1024)), "", "tiny"
    )
    fitted = parse_user_options({"partition": "cpu", "qos": "tiny"}, {"cpu": narrowed})
    assert (fitted.nprocs, fitted.memory) == (1, "1024M")


def test_a_hub_wide_gpu_default_leaves_partitions_without_gpus_alone():
    assert parse({"partition": "cpu"}, defaults={"ngpus": 1}).ngpus == 0
    assert parse({"partition": "gpu"}, defaults={"ngpus": 2}).ngpus == 1  # gpu's own default


# -- every way in: locks ------------------------------------------------------------------------


def test_a_locked_field_takes_its_lock_when_left_out():
    options = parse({"partition": "gpu"})
    assert (options.output, options.default_url) == (True, "/lab")


@pytest.mark.parametrize(
    "raw",
    [
        {"partition": ["gpu"], "output": ["false"]},  # the form (flattened lists)
        normalise_query({"partition": [b"gpu"], "output": [b"off"]}),  # a link
        {"partition": "gpu", "output": False},  # the REST API (JSON)
    ],
)
def test_another_value_of_a_locked_field_is_refused_on_every_way_in(raw):
    raw = flatten_form(raw) if isinstance(raw.get("partition"), list) else raw
    errors = refusal(raw)
    assert list(errors) == ["output"]
    assert errors["output"] == (
        "output: set to saving logs by this hub's administrators on gpu; "
        "leave it out or send that value"
    )


@pytest.mark.parametrize(
    ("field", "lock", "sent"),
    [
        ("runtime", "1:00:00", "60"),  # Slurm reads 60 as minutes
        ("runtime", "1:00:00", "0-01:00:00"),
        ("memory", "4G", "4096"),  # megabytes
        ("nprocs", 2, "2"),
        ("output", True, "on"),
        ("default_url", "/lab", "/lab"),
    ],
)
def test_the_locked_value_in_another_spelling_is_accepted(field, lock, sent):
    options = parse({"partition": "cpu", field: sent}, locks={field: lock})
    assert (
        options.to_saved()[field]
        == parse({"partition": "cpu"}, locks={field: lock}).to_saved()[field]
    )


def test_a_hostile_value_of_a_locked_field_is_refused_without_echoing_it_raw():
    errors = refusal({"partition": "cpu", "default_url": "//evil.example/\n"})
    assert list(errors) == ["default_url"]
    assert "evil" not in errors["default_url"]


def test_a_lock_is_validated_like_any_value():
    # Slurm allows 1 h on cpu: a lock of 2 h refuses every request instead of reaching Slurm
    slurm = {"cpu": _info("cpu", cpus=8, max_runtime=3600)}
    parts = {"cpu": {**PARTITIONS["cpu"], "max_runtime": None}}
    parts["cpu"] = {k: v for k, v in parts["cpu"].items() if v is not None}
    errors = refusal(
        {"partition": "cpu"}, partitions=parts, slurm=slurm, locks={"runtime": "2:00:00"}
    )
    assert errors == {"runtime": "runtime: at most 01:00:00 on cpu"}


def test_a_locked_environment_refuses_a_custom_one():
    errors = refusal(
        {"partition": "cpu", "environment_path": "/home/alice/env/bin"},
        locks={"environment_id": "py"},
    )
    assert errors["environment_path"].startswith(
        "environment_path: the environment is set by this hub's administrators"
    )


# -- the start-up check -------------------------------------------------------------------------


def problems(partitions=None, defaults=None, locks=None) -> list[str]:
    configs = load_partitions(partitions or PARTITIONS)
    return preset_problems(
        configs,
        load_field_values(HUB_DEFAULTS if defaults is None else defaults, "field_defaults"),
        load_field_values(HUB_LOCKS if locks is None else locks, "locked_fields"),
    )


def test_the_example_config_has_no_problem():
    assert problems() == []


def test_a_default_beyond_an_admin_limit_names_the_setting_partition_and_field():
    assert problems(defaults={"nprocs": 16}) == [
        "c.MOSlurmSpawner.field_defaults: field 'nprocs' = 16 on gpu: at most 8 CPUs on gpu"
    ]


def test_a_partitions_own_lock_beyond_its_limit_names_it():
    gpu = {**PARTITIONS["gpu"], "field_defaults": {}, "locked_fields": {"ngpus": 3}}
    parts = {**PARTITIONS, "gpu": gpu}
    assert problems(parts) == [
        "partition 'gpu': locked_fields: field 'ngpus' = 3 on gpu: at most 2 GPUs on gpu"
    ]


def test_gpus_on_a_partition_without_any_is_a_problem_only_where_the_admin_said_so():
    assert problems(defaults={"ngpus": 1}) == []  # hub-wide: applies where there are GPUs
    assert problems(locks={"ngpus": 1}) == [
        "c.MOSlurmSpawner.locked_fields: field 'ngpus' = 1 on cpu: cpu has no GPUs; use 0"
    ]


def test_values_slurm_cannot_read_are_problems():
    found = problems(defaults={"runtime": "2 hours", "memory": "lots"}, locks={})
    assert len(found) == 3  # each on both partitions, but gpu has its own run time
    assert any("field 'runtime' = '2 hours' on cpu: expected hh:mm:ss" in p for p in found)
    assert any("field 'memory' = 'lots' on gpu: expected a Slurm size" in p for p in found)


def test_an_environment_no_partition_has_is_a_problem():
    assert problems(defaults={"environment_id": "julia"}) == [
        "field_defaults: environment_id 'julia' is not an environment of any partition"
    ]
    assert problems(defaults={}, locks={"environment_id": "julia"}) == [
        "c.MOSlurmSpawner.locked_fields: field 'environment_id' = 'julia' on cpu: "
        "cpu has no environment 'julia'; one of: py, r",
        "c.MOSlurmSpawner.locked_fields: field 'environment_id' = 'julia' on gpu: "
        "gpu has no environment 'julia'; one of: py, r",
    ]


def test_a_default_and_a_different_lock_of_one_field_is_a_problem():
    found = problems(defaults={"runtime": "2:00:00"}, locks={"runtime": "1:00:00"})
    assert found[0].startswith(
        "field_defaults / locked_fields: field 'runtime' has a default ('2:00:00') and a lock"
    )


# -- the page ----------------------------------------------------------------------------------


def spawner(**traits) -> MOSlurmSpawner:
    settings = {
        "partitions": PARTITIONS,
        "field_defaults": HUB_DEFAULTS,
        "locked_fields": HUB_LOCKS,
        **traits,
    }
    made = MOSlurmSpawner(user=types.SimpleNamespace(name="alice", spawners={}), **settings)
    made.orm_spawner = types.SimpleNamespace(name="", user_options={}, server=None)
    snap = ClusterSnapshot(
        partitions={"cpu": _info("cpu", cpus=28), "gpu": _info("gpu", cpus=8, gpus={"fake": 2})},
        reservations=(),
        taken_at=datetime.now(timezone.utc),
    )

    async def fixed_snapshot():
        return snap

    made.cluster_snapshot = fixed_snapshot
    return made


def fragment(made: MOSlurmSpawner, name: str, **query) -> BeautifulSoup:
    args = {k: [v.encode()] for k, v in query.items()}
    return BeautifulSoup(asyncio.run(made.render_form_fragment(name, "", args)), "html.parser")


@pytest.mark.parametrize("tab", ["simple", "advanced"])
def test_a_locked_field_is_shown_fixed_and_sends_nothing(tab):
    soup = fragment(spawner(), "body", moss_tab=tab, partition="gpu")
    start = soup.select_one("#moss-default-url")
    assert start.has_attr("readonly") and not start.has_attr("name")
    assert start["value"] == "/lab"
    assert "Fixed by this hub's administrators." in soup.select_one("#moss-default-url-help").text
    assert soup.select("[name=default_url]") == []
    if tab == "advanced":
        logs = soup.select_one("#moss-output")
        assert logs["value"].startswith("Saved to slurm-") and not logs.has_attr("name")


def test_the_page_starts_from_the_defaults():
    soup = fragment(spawner(), "body", moss_tab="advanced", partition="cpu")
    assert soup.select_one("input[name=runtime]")["value"] == "02:00:00"
    assert soup.select_one("input[name=nprocs]")["value"] == "4"
    assert soup.select_one("input[name=memory]")["value"] == "8G"
    assert soup.select_one("select[name=environment_id] option[selected]")["value"] == "r"


def test_a_locked_environment_hides_the_custom_one():
    locked = spawner(field_defaults={}, locked_fields={"environment_id": "py"})
    soup = fragment(locked, "body", moss_tab="advanced")
    assert soup.select_one("#moss-environment-id")["value"] == "Python 3.11"
    assert soup.select("[name=environment_path]") == []


def test_the_spawner_refuses_another_value_of_a_lock_with_a_400():
    with pytest.raises(InvalidUserOptions) as caught:
        asyncio.run(spawner().check_options({"partition": "cpu", "default_url": "/tree"}))
    assert caught.value.status_code == 400
    assert "default_url: set to /lab by this hub's administrators" in caught.value.log_message


# -- helpers ------------------------------------------------------------------------------------


def _info(name: str, cpus: int, max_runtime: int | None = 86400, gpus=None) -> PartitionInfo:
    return PartitionInfo(
        name=name,
        state="up",
        is_default=False,
        nodes_idle=1,
        nodes_total=1,
        cpus_idle=cpus,
        cpus_total=cpus,
        cpus_per_node=cpus,
        memory_per_node_mb=64000,
        max_runtime=max_runtime,
        gpus_per_node=gpus or {},
    )


def _with_qos(part, name: str, qos_limits: JobLimits):
    from dataclasses import replace

    return replace(part, qos_limits={name: qos_limits})


# -- with GPU types and groups -----------------------------------------------------------------

TYPED = {
    "gpu": {
        "gpu": "gpu:{}",
        "max_ngpus": 4,
        "max_nprocs": 8,
        "max_runtime": 3600,
        "gpu_types": {"a100": {"max_ngpus": 1}, "v100": {}},
        "jupyter_environments": ENVS,
    }
}


def test_a_gpu_type_can_be_defaulted_and_the_count_fits_its_limit():
    options = parse(
        {"partition": "gpu"}, partitions=TYPED, defaults={"gpu_type": "a100", "ngpus": 2}
    )
    assert (options.gpu_type, options.ngpus) == ("a100", 1)  # a100's limit is 1
    sent = parse({"partition": "gpu", "gpu_type": "v100"}, partitions=TYPED, defaults={"ngpus": 2})
    assert (sent.gpu_type, sent.ngpus) == ("v100", 2)


def test_a_locked_gpu_type_refuses_another_and_shows_fixed():
    parts = {"gpu": {**TYPED["gpu"], "locked_fields": {"gpu_type": "v100"}}}
    errors = refusal({"partition": "gpu", "gpu_type": "a100", "ngpus": "1"}, partitions=parts)
    assert errors["gpu_type"].startswith(
        "gpu_type: set to v100 by this hub's administrators on gpu"
    )
    made = spawner(partitions=parts, field_defaults={}, locked_fields={})
    soup = fragment(made, "body", moss_tab="advanced", partition="gpu")
    shown = soup.select_one("#moss-gpu-type")
    assert shown.has_attr("readonly") and shown["value"] == "v100"
    assert soup.select("[name=gpu_type]") == []


def test_an_unknown_gpu_type_in_a_lock_stops_the_hub():
    parts = {"gpu": {**TYPED["gpu"], "locked_fields": {"gpu_type": "h100"}}}
    found = problems(parts, defaults={}, locks={})
    assert len(found) == 1 and found[0].startswith(
        "partition 'gpu': locked_fields: field 'gpu_type' = 'h100' on gpu:"
    )


def test_a_default_environment_the_users_groups_hide_falls_back_to_one_they_may_use():
    envs = {"py": ENVS["py"], "r": {**ENVS["r"], "groups": ["stats"]}}
    parts = {"cpu": {**PARTITIONS["cpu"], "jupyter_environments": envs}}
    configs = load_partitions(parts)
    hub_defaults = load_field_values({"environment_id": "r"}, "d")
    presets = {n: partition_presets(n, c, hub_defaults, FieldValues()) for n, c in configs.items()}
    from jupyterhub_moss.user_access import UserAccess

    outsider = UserAccess("bob", frozenset(), hub_groups=frozenset())
    member = UserAccess("alice", frozenset(), hub_groups=frozenset({"stats"}))
    for access, expected in ((outsider, "py"), (member, "r")):
        merged = merge_partition_limits(configs, None, presets=presets, access=access)
        assert parse_user_options({"partition": "cpu"}, merged).environment_id == expected
