"""Partitions and environments per JupyterHub group: the ``groups`` field of the config.

A partition or environment with ``groups`` is offered only to members of one of them and to the
hub's admins. Everyone else does not see it on the page (cards, select, availability table,
environment choices, start-sooner suggestions, pre-filled saved options) and is refused by the
one validator when they ask for it anyway (form, link or REST API), with the reason, naming the
field. Slurm's own rules still apply to admins.

The site here: ``cpu`` for everyone, with the environment ``default`` for everyone and ``ml``
for the group ``ml``; ``gpu`` for the group ``gpulab``; ``secret`` whose only environment is
for the group ``ml`` (so only ``ml`` members and admins may use it).
"""

from __future__ import annotations

import asyncio
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from jupyterhub_moss.config import PartitionConfigError, load_partitions
from jupyterhub_moss.context import FormContext
from jupyterhub_moss.form.estimate import fitting_alternatives
from jupyterhub_moss.limits import merge_partition_limits, partition_refusals
from jupyterhub_moss.options import (
    OptionsPolicy,
    UserOptionsError,
    parse_user_options,
    salvage_saved_options,
)
from jupyterhub_moss.slurm.models import PartitionInfo
from jupyterhub_moss.slurm.partition_access import PartitionAccess
from jupyterhub_moss.slurm.view import ClusterSnapshot
from jupyterhub_moss.spawner import InvalidUserOptions, MOSlurmSpawner
from jupyterhub_moss.user_access import UserAccess, hub_group_refusal, jupyterhub_groups

pytestmark = pytest.mark.unit

EVERYONE_ENV = {"description": "Default", "path": "/opt/env/bin/"}
ML_ENV = {"description": "Machine learning", "path": "/opt/ml/bin/", "groups": ["ml"]}
RAW = {
    "cpu": {"description": "CPU nodes", "gpu": "", "max_nprocs": 8, "max_runtime": 7200,
            "jupyter_environments": {"default": EVERYONE_ENV, "ml": ML_ENV}},
    "gpu": {"description": "GPU nodes", "gpu": "gpu:{}", "max_ngpus": 2, "max_nprocs": 8,
            "max_runtime": 7200, "groups": ["gpulab"],
            "jupyter_environments": {"default": EVERYONE_ENV}},
    "secret": {"description": "ML only", "gpu": "", "max_nprocs": 8, "max_runtime": 7200,
               "jupyter_environments": {"ml": ML_ENV}},
}  # fmt: skip
CONFIGS = load_partitions(RAW)


def who(name: str, *hub_groups: str, admin: bool = False) -> UserAccess:
    return UserAccess(name, None, hub_groups=frozenset(hub_groups), hub_admin=admin)


NOBODY = who("bob")
GPULAB = who("gina", "gpulab")
ML = who("mia", "ml", "physics")
ADMIN = who("root-admin", admin=True)


def limits_for(access: UserAccess | None, rules=None) -> dict:
    return merge_partition_limits(CONFIGS, None, access=access, rules=rules)


# -- the config model ------------------------------------------------------------------------


def test_groups_are_kept_in_the_admins_order_and_default_to_everyone():
    assert CONFIGS["gpu"].groups == ("gpulab",)
    assert CONFIGS["cpu"].groups is None
    assert CONFIGS["cpu"].jupyter_environments["ml"].groups == ("ml",)
    assert CONFIGS["cpu"].jupyter_environments["default"].groups is None
    tupled = load_partitions({"p": {"groups": ("b", "a"), "jupyter_environments": {"e": ML_ENV}}})
    assert tupled["p"].groups == ("b", "a")


ENV_WITH = {"jupyter_environments": {"default": EVERYONE_ENV}}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"p": {**ENV_WITH, "groups": []}},
            "partition 'p': field 'groups': must name at least one JupyterHub group "
            "(leave 'groups' out to offer it to everyone)",
        ),
        (
            {"p": {**ENV_WITH, "groups": "staff"}},
            "partition 'p': field 'groups': must be a list of JupyterHub group names, "
            "such as ['staff']",
        ),
        (
            {"p": {**ENV_WITH, "groups": {"staff"}}},
            "partition 'p': field 'groups': must be a list of JupyterHub group names, not set",
        ),
        (
            {"p": {**ENV_WITH, "groups": ["staff", ""]}},
            "partition 'p': field 'groups': group names must be non-empty single-line strings, "
            "got ''",
        ),
        (
            {"p": {**ENV_WITH, "groups": ["a\nb"]}},
            "field 'groups': group names must be non-empty single-line strings, got 'a\\nb'",
        ),
        ({"p": {**ENV_WITH, "groups": [7]}}, "field 'groups': group names must be non-empty"),
        (
            {"p": {"jupyter_environments": {"e": {**EVERYONE_ENV, "groups": []}}}},
            "partition 'p': field 'jupyter_environments.e.groups': must name at least one "
            "JupyterHub group",
        ),
        (
            {"p": {"jupyter_environments": {"e": {**EVERYONE_ENV, "groups": "ml"}}}},
            "partition 'p': field 'jupyter_environments.e.groups': must be a list",
        ),
        (
            {"p": {**ENV_WITH, "group": ["staff"]}},
            "partition 'p': field 'group': unknown field (allowed: ",
        ),
    ],
)
def test_bad_groups_stop_the_hub_naming_partition_and_field(config, expected):
    with pytest.raises(PartitionConfigError) as caught:
        load_partitions(config)
    assert expected in str(caught.value)


def test_the_spawner_refuses_bad_groups_at_start_up():
    with pytest.raises(Exception, match="field 'groups': must name at least one"):
        MOSlurmSpawner(partitions={"p": {**ENV_WITH, "groups": []}})


# -- who the rule keeps out --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "access", "expected"),
    [
        (None, NOBODY, None),
        (("gpulab",), GPULAB, None),
        (("gpulab", "ml"), ML, None),
        (("gpulab",), ADMIN, None),
        (("gpulab",), NOBODY, "reserved for members of the JupyterHub group gpulab"),
        (("b", "a"), ML, "reserved for members of the JupyterHub groups b, a"),
    ],
)
def test_hub_group_refusal(groups, access, expected):
    assert hub_group_refusal(groups, access) == expected


def test_a_unix_group_of_the_same_name_does_not_count():
    unix_only = UserAccess("gina", frozenset({"gpulab"}))
    assert hub_group_refusal(("gpulab",), unix_only) is not None


def test_jupyterhub_groups_reads_the_users_group_names_and_admin_flag():
    user = types.SimpleNamespace(
        name="gina",
        groups=[types.SimpleNamespace(name="gpulab"), types.SimpleNamespace(name="ml")],
        admin=False,
    )
    assert jupyterhub_groups(user) == (frozenset({"gpulab", "ml"}), False)
    admin = types.SimpleNamespace(name="root", groups=[], admin=True)
    assert jupyterhub_groups(admin) == (frozenset(), True)
    # a stand-in with neither is in no group and no admin: what is reserved stays hidden
    assert jupyterhub_groups(types.SimpleNamespace(name="x")) == (frozenset(), False)


# -- the merge: what each user is offered ------------------------------------------------------


@pytest.mark.parametrize(
    ("access", "partitions", "cpu_environments"),
    [
        (NOBODY, ["cpu"], ["default"]),
        (GPULAB, ["cpu", "gpu"], ["default"]),
        (ML, ["cpu", "secret"], ["default", "ml"]),
        (ADMIN, ["cpu", "gpu", "secret"], ["default", "ml"]),
        (None, ["cpu", "gpu", "secret"], ["default", "ml"]),  # not for a user: no filter
    ],
)
def test_each_user_is_offered_what_their_groups_allow(access, partitions, cpu_environments):
    limits = limits_for(access)
    assert list(limits) == partitions
    assert list(limits["cpu"].environments) == cpu_environments
    assert limits["cpu"].default_environment_id == "default"


def test_refusals_say_why_and_match_what_the_merge_leaves_out():
    assert partition_refusals(CONFIGS, NOBODY, None) == {
        "gpu": "reserved for members of the JupyterHub group gpulab",
        "secret": "every Jupyter environment it offers is reserved for members of the "
        "JupyterHub group ml",
    }
    for access in (NOBODY, GPULAB, ML, ADMIN):
        merged = set(limits_for(access))
        refused = set(partition_refusals(CONFIGS, access, None))
        assert merged.isdisjoint(refused)
        assert merged | refused == set(CONFIGS)


def test_hidden_environments_are_listed_with_their_reason():
    cpu = limits_for(NOBODY)["cpu"]
    assert cpu.refused_environments == (("ml", "reserved for members of the JupyterHub group ml"),)
    assert cpu.environment_refusal("ml") is not None
    assert cpu.environment_refusal("default") is None
    assert limits_for(ML)["cpu"].refused_environments == ()


def test_the_first_environment_a_user_may_use_is_their_default():
    raw = {"p": {"jupyter_environments": {"ml": ML_ENV, "default": EVERYONE_ENV}}}
    configs = load_partitions(raw)
    assert merge_partition_limits(configs, None, access=NOBODY)["p"].default_environment_id == (
        "default"
    )
    assert merge_partition_limits(configs, None, access=ML)["p"].default_environment_id == "ml"


def test_slurms_rules_still_apply_to_hub_admins():
    rules = {"cpu": PartitionAccess("cpu", allow_groups=frozenset({"staff"}))}
    admin = UserAccess("root-admin", frozenset({"root-admin"}), hub_admin=True)
    assert "cpu" not in limits_for(admin, rules)
    assert partition_refusals(CONFIGS, admin, rules) == {
        "cpu": "cpu is open to the groups staff only"
    }


def test_the_hubs_own_rule_is_the_reason_given_first():
    rules = {"gpu": PartitionAccess("gpu", allow_groups=frozenset({"staff"}))}
    nobody = UserAccess("bob", frozenset({"bob"}))
    assert partition_refusals(CONFIGS, nobody, rules)["gpu"] == (
        "reserved for members of the JupyterHub group gpulab"
    )


# -- the validator: every way in ---------------------------------------------------------------


def policy_for(access: UserAccess) -> OptionsPolicy:
    return OptionsPolicy(
        default_partition="cpu",
        refused_partitions=tuple(partition_refusals(CONFIGS, access, None).items()),
    )


def refused(raw: dict, access: UserAccess) -> dict[str, str]:
    with pytest.raises(UserOptionsError) as caught:
        parse_user_options(raw, limits_for(access), policy_for(access))
    return caught.value.errors


def test_a_hidden_partition_is_refused_naming_the_field_and_the_reason():
    errors = refused({"partition": "gpu"}, NOBODY)
    assert errors == {
        "partition": "partition: you may not use gpu: "
        "reserved for members of the JupyterHub group gpulab"
    }


def test_a_hidden_environment_is_refused_naming_the_field_and_the_reason():
    errors = refused({"partition": "cpu", "environment_id": "ml"}, NOBODY)
    assert errors == {
        "environment_id": "environment_id: you may not use 'ml' on cpu: "
        "reserved for members of the JupyterHub group ml; yours: default"
    }
    # an environment that does not exist is still just unknown
    unknown = refused({"partition": "cpu", "environment_id": "nope"}, NOBODY)
    assert unknown["environment_id"].startswith("environment_id: cpu has no environment 'nope'")


@pytest.mark.parametrize("access", [ML, ADMIN])
def test_members_and_admins_may_ask_for_them(access):
    options = parse_user_options(
        {"partition": "secret", "environment_id": "ml"}, limits_for(access), policy_for(access)
    )
    assert (options.partition, options.environment_id) == ("secret", "ml")


def test_a_custom_environment_does_not_open_a_hidden_partition():
    errors = refused({"partition": "secret", "environment_path": "/home/bob/env/bin"}, NOBODY)
    assert errors["partition"].startswith("partition: you may not use secret")


def test_saved_options_for_what_is_now_hidden_pre_fill_nothing_hidden():
    limits, policy = limits_for(NOBODY), policy_for(NOBODY)
    assert salvage_saved_options({"partition": "gpu", "nprocs": "2"}, limits, policy) == {}
    kept = salvage_saved_options(
        {"partition": "cpu", "nprocs": "2", "environment_id": "ml"}, limits, policy
    )
    assert (kept["partition"], kept["nprocs"], kept["environment_id"]) == ("cpu", "2", "default")


# -- the spawner: the page, the fragments, the defaults ---------------------------------------


def make_spawner(access: UserAccess, partitions: dict = RAW, saved=None, **traits):
    spawner = MOSlurmSpawner(
        partitions=partitions,
        user=types.SimpleNamespace(name=access.user, spawners={}),
        **traits,
    )
    spawner.orm_spawner = types.SimpleNamespace(name="", user_options=saved or {}, server=None)
    now = datetime.now(timezone.utc)
    snap = ClusterSnapshot(
        partitions={
            name: PartitionInfo(name=name, state="up", is_default=False, nodes_idle=1,
                                nodes_total=1, cpus_idle=8, memory_per_node_mb=16000,
                                cpus_total=8, cpus_per_node=8, max_runtime=7200)
            for name in partitions
        },
        reservations=(),
        taken_at=now - timedelta(seconds=3),
    )  # fmt: skip

    async def fixed_snapshot():
        return snap

    async def fixed_access():
        return access

    spawner.cluster_snapshot = fixed_snapshot
    spawner.user_access = fixed_access
    return spawner


def page(spawner) -> BeautifulSoup:
    return BeautifulSoup(asyncio.run(spawner.render_options_form()), "html.parser")


def fragment(spawner, name: str, **query) -> BeautifulSoup:
    args = {k: [v.encode()] for k, v in query.items()}
    return BeautifulSoup(asyncio.run(spawner.render_form_fragment(name, "", args)), "html.parser")


def shown_partitions(soup: BeautifulSoup) -> dict[str, list[str]]:
    """Every place the page names partitions: cards, select, availability rows."""
    return {
        "cards": [i["value"] for i in soup.select("input[name=partition][type=radio]")],
        "select": [o["value"] for o in soup.select("select[name=partition] option")],
        "table": [th.get_text(strip=True) for th in soup.select("tbody th[scope=row]")],
    }


def environment_ids(soup: BeautifulSoup) -> list[str]:
    return [o["value"] for o in soup.select("select[name=environment_id] option")]


@pytest.mark.parametrize(
    ("access", "partitions", "environments"),
    [
        (NOBODY, ["cpu"], ["default"]),
        (GPULAB, ["cpu", "gpu"], ["default"]),
        (ML, ["cpu", "secret"], ["default", "ml"]),
        (ADMIN, ["cpu", "gpu", "secret"], ["default", "ml"]),
    ],
)
def test_the_page_shows_each_user_only_theirs(access, partitions, environments):
    spawner = make_spawner(access)
    simple = page(spawner)
    assert shown_partitions(simple)["cards"] == partitions
    assert environment_ids(simple) == environments
    advanced = fragment(spawner, "body", moss_tab="advanced")
    assert shown_partitions(advanced)["select"] == partitions
    table = fragment(spawner, "availability", moss_tab="advanced")
    assert shown_partitions(table)["table"] == partitions
    assert shown_partitions(simple)["table"] == partitions
    hidden = set(RAW) - set(partitions)
    text = simple.get_text(" ") + advanced.get_text(" ") + table.get_text(" ")
    for name in hidden:
        assert RAW[name]["description"] not in text
    if "ml" not in environments:
        assert "Machine learning" not in text


@pytest.mark.parametrize("name", ["body", "partition", "availability"])
def test_a_fragment_asked_for_a_hidden_partition_shows_the_default_one(name):
    soup = fragment(make_spawner(NOBODY), name, moss_tab="advanced", partition="gpu")
    assert "GPU nodes" not in soup.get_text(" ")
    assert soup.select("[name=ngpus]") == []  # gpu's controls would ask for GPUs
    assert shown_partitions(soup)["table"] in ([], ["cpu"])
    if name == "body":
        assert shown_partitions(soup)["select"] == ["cpu"]
        assert soup.select_one("select[name=partition] option[selected]")["value"] == "cpu"
    # what a member gets for the same request: gpu's own controls
    member = fragment(make_spawner(GPULAB), name, moss_tab="advanced", partition="gpu")
    if name == "availability":
        assert shown_partitions(member)["table"] == ["cpu", "gpu"]
    else:
        assert member.select("[name=ngpus]") != []


def test_saved_options_for_a_hidden_partition_open_the_default_form():
    saved = {"partition": "gpu", "nprocs": "4", "ngpus": "1", "runtime": "01:00:00"}
    soup = page(make_spawner(NOBODY, saved=saved))
    assert soup.select_one("input[name=partition][checked]")["value"] == "cpu"
    assert "GPU nodes" not in soup.get_text(" ")


def test_the_default_partition_is_one_the_user_may_use():
    spawner = make_spawner(NOBODY, default_partition="gpu")
    policy = asyncio.run(spawner.form_context()).policy
    assert policy.default_partition == "cpu"
    soup = page(spawner)
    assert soup.select_one("input[name=partition][checked]")["value"] == "cpu"
    # a REST API spawn without options gets it
    request = asyncio.run(spawner.check_options({}))
    assert (request.options.partition, request.options.environment_id) == ("cpu", "default")
    # a member gets the admin's default
    member = make_spawner(GPULAB, default_partition="gpu")
    assert asyncio.run(member.check_options({})).options.partition == "gpu"


def test_the_spawner_refuses_hidden_choices_with_a_400():
    spawner = make_spawner(NOBODY)
    with pytest.raises(InvalidUserOptions) as caught:
        asyncio.run(spawner.check_options({"partition": "secret", "environment_id": "ml"}))
    assert caught.value.status_code == 400
    assert "partition: you may not use secret" in caught.value.log_message
    with pytest.raises(InvalidUserOptions) as caught:
        asyncio.run(spawner.check_options({"partition": "cpu", "environment_id": "ml"}))
    assert "environment_id: you may not use 'ml' on cpu" in caught.value.log_message


def test_a_user_offered_no_partition_is_told_why():
    only_for_groups = {"gpu": RAW["gpu"], "secret": RAW["secret"]}
    spawner = make_spawner(NOBODY, partitions=only_for_groups)
    text = page(spawner).get_text(" ")
    assert "None of the partitions this hub offers is open to you" in text
    assert "gpu: reserved for members of the JupyterHub group gpulab" in text
    assert "secret: every Jupyter environment it offers is reserved" in text
    assert "None of the partitions" in fragment(spawner, "body").get_text(" ")
    with pytest.raises(InvalidUserOptions) as caught:
        asyncio.run(spawner.check_options({}))
    assert "partition: you may not use gpu: reserved for members" in caught.value.log_message


def test_start_sooner_never_suggests_a_hidden_partition():
    """The suggestions are the same request on the other partitions the user may use."""
    request = {"partition": "cpu", "nprocs": "2", "runtime": "00:30:00"}

    def alternatives(access: UserAccess) -> list[str]:
        limits = limits_for(access)
        ctx = FormContext("u", "", None, limits, policy_for(access))
        chosen = parse_user_options(request, limits, ctx.policy)
        return [o.partition for o in fitting_alternatives(ctx, request, chosen)]

    assert alternatives(ADMIN) == ["gpu", "secret"]
    assert alternatives(NOBODY) == []
    assert alternatives(GPULAB) == ["gpu"]


# -- the README's example ----------------------------------------------------------------------


def readme_groups_example() -> dict:
    """Runs the README's example of ``groups``, as a ``jupyterhub_config.py`` would."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("#### Partitions and environments per JupyterHub group", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    c = types.SimpleNamespace(
        JupyterHub=types.SimpleNamespace(), MOSlurmSpawner=types.SimpleNamespace()
    )
    exec(code, {"c": c})  # noqa: S102 - the README's own text, checked to work as documented
    return {"groups": c.JupyterHub.load_groups, "partitions": c.MOSlurmSpawner.partitions}


def test_the_readme_example_does_what_the_readme_says():
    example = readme_groups_example()
    configs = load_partitions(example["partitions"])

    def offered(user: str, admin: bool = False) -> dict[str, list[str]]:
        groups = {g for g, spec in example["groups"].items() if user in spec["users"]}
        access = UserAccess(user, None, hub_groups=frozenset(groups), hub_admin=admin)
        limits = merge_partition_limits(configs, None, access=access)
        return {name: list(part.environments) for name, part in limits.items()}

    assert offered("alice") == {"cpu": ["default", "pytorch"], "gpu": ["default"]}
    assert offered("carol") == {"cpu": ["default", "pytorch"]}
    assert offered("dave") == {"cpu": ["default"]}
    assert offered("root", admin=True) == offered("alice")
