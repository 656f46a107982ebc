"""What a user may use, and the limits each choice brings, on the site captured from dev/cluster.

The data is the real ``sacctmgr`` and ``scontrol -a show partition`` output of the accounting
cluster (tests/fixtures/slurm/accounting_*): alice in physics (default; an association of her
own on partition gpu) and chemistry (8 h, 6 CPUs a job); bob in physics; QOS normal (1 day),
short (2 h, 4 CPUs), long (2 days), gpu (1 GPU); chem open to the account chemistry, lab to the
group mosslab, hidden hidden.
"""

from __future__ import annotations

import asyncio
import types
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from jupyterhub_moss.batch_script import ScriptSettings
from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.form.estimate import estimate_args
from jupyterhub_moss.limits import charged_limits, merge_partition_limits, partition_refusals
from jupyterhub_moss.options import OptionsPolicy, UserOptionsError, parse_user_options
from jupyterhub_moss.slurm.accounting import (
    UserAssociations,
    parse_qos,
    parse_user_associations,
)
from jupyterhub_moss.slurm.partition_access import parse_partition_access
from jupyterhub_moss.slurm.partitions import parse_sinfo
from jupyterhub_moss.slurm.view import ClusterSnapshot
from jupyterhub_moss.spawner import InvalidUserOptions, MOSlurmSpawner
from jupyterhub_moss.user_access import UserAccess, account_choices, partition_refusal

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[1] / "fixtures" / "slurm"
QOS = parse_qos((FIXTURES / "accounting_qos.txt").read_text())
USERS = parse_user_associations((FIXTURES / "accounting_users_alice_bob.txt").read_text())
RULES = parse_partition_access((FIXTURES / "accounting_partitions_single.txt").read_text())
SINFO = parse_sinfo((FIXTURES / "accounting_sinfo_single.txt").read_text())
CONFIGS = load_partitions(
    {name: {"jupyter_environments": {"default": {"path": "/opt/env/bin/"}}} for name in RULES}
)


def access(user: str, groups: set[str] | None = None) -> UserAccess:
    return UserAccess(user, frozenset(groups or {user}), associations=USERS[user], qos=QOS)


ALICE = access("alice", {"alice", "mosslab"})
BOB = access("bob")


def limits_for(who: UserAccess) -> dict:
    return merge_partition_limits(CONFIGS, SINFO, access=who, rules=RULES)


def names(choices) -> list[str]:
    return [choice.name for choice in choices]


def test_each_user_is_offered_the_partitions_slurm_lets_them_use():
    assert list(limits_for(ALICE)) == ["cpu", "gpu", "debug", "chem", "lab", "hidden"]
    assert list(limits_for(BOB)) == ["cpu", "gpu", "debug", "hidden"]
    refusals = partition_refusals(CONFIGS, BOB, RULES)
    assert refusals == {
        "chem": "chem is open to the accounts chemistry only",
        "lab": "lab is open to the groups mosslab only",
    }


def test_the_default_account_comes_first_and_only_allowed_accounts_are_offered():
    assert names(account_choices(ALICE, RULES["cpu"])) == ["physics", "chemistry"]
    assert names(account_choices(ALICE, RULES["chem"])) == ["chemistry"]
    assert names(account_choices(BOB, RULES["cpu"])) == ["physics"]


def test_a_partitions_own_association_wins_on_that_partition():
    on_gpu = {c.name: c for c in account_choices(ALICE, RULES["gpu"])}
    on_cpu = {c.name: c for c in account_choices(ALICE, RULES["cpu"])}
    assert on_gpu["physics"].qos == ("gpu", "normal")
    assert on_cpu["physics"].qos == ("long", "normal", "short")
    assert on_cpu["physics"].default_qos == "normal"


def test_deny_lists_and_allowed_qos_narrow_the_choices():
    rules = replace(RULES["cpu"], deny_accounts=frozenset({"physics"}))
    assert names(account_choices(ALICE, rules)) == ["chemistry"]
    rules = replace(RULES["cpu"], allow_qos=frozenset({"long"}))
    chosen = account_choices(ALICE, rules)
    assert [c.qos for c in chosen] == [("long",), ("long",)]
    assert [c.default_qos for c in chosen] == ["long", "long"]
    # no QOS of any account allowed: the partition is not the user's
    rules = replace(RULES["cpu"], allow_qos=frozenset({"premium"}))
    assert partition_refusal(ALICE, rules) == "none of your Slurm accounts may use cpu"


def test_a_user_unknown_to_the_hub_is_not_filtered():
    unknown = UserAccess("carol", None)
    assert list(merge_partition_limits(CONFIGS, SINFO, access=unknown, rules=RULES)) == list(
        CONFIGS
    )
    assert limits_for(unknown)["cpu"].accounts == ()


def test_a_user_without_any_account_sees_the_page_and_is_refused_naming_account():
    nobody = UserAccess("carol", frozenset({"carol"}), associations=UserAssociations("carol", ""))
    limits = merge_partition_limits(CONFIGS, SINFO, access=nobody, rules=RULES)
    assert "cpu" in limits and "lab" not in limits  # groups still apply
    with pytest.raises(UserOptionsError) as refused:
        parse_user_options({"partition": "cpu"}, limits)
    assert list(refused.value.errors) == ["account"]
    assert "Slurm has no account for carol" in refused.value.errors["account"]


@pytest.mark.parametrize(
    ("partition", "account", "qos", "expected"),
    [
        ("cpu", "physics", "normal", (86400, "partition cpu", 8, "partition cpu")),
        ("cpu", "physics", "short", (7200, "QOS short", 4, "QOS short")),
        ("cpu", "chemistry", "normal", (8 * 3600, "account chemistry", 6, "account chemistry")),
        ("cpu", "chemistry", "long", (8 * 3600, "account chemistry", 6, "account chemistry")),
        ("hidden", "physics", "long", (2 * 86400, "QOS long", 8, "partition hidden")),
        ("hidden", "physics", "normal", (86400, "QOS normal", 8, "partition hidden")),
        ("debug", "physics", "long", (3600, "partition debug", 8, "partition debug")),
    ],
)
def test_the_tightest_limit_applies_and_says_where_it_comes_from(partition, account, qos, expected):
    part = charged_limits(limits_for(ALICE)[partition], account, qos)
    runtime, runtime_source, cpus, cpus_source = expected
    assert (part.max_runtime, part.source_of("runtime")) == (runtime, runtime_source)
    assert (part.max_nprocs, part.source_of("nprocs")) == (cpus, cpus_source)


def test_a_gpu_qos_caps_the_gpus():
    gpu = limits_for(ALICE)["gpu"]
    assert gpu.max_ngpus == 2
    assert charged_limits(gpu, "physics", "gpu").max_ngpus == 1
    assert charged_limits(gpu, "physics", "gpu").source_of("ngpus") == "QOS gpu"


def test_a_partitions_own_qos_applies_whatever_the_jobs_qos():
    part = replace(limits_for(ALICE)["cpu"], partition_qos="short")
    assert charged_limits(part, "physics", "long").max_runtime == 7200


def parse(who: UserAccess, policy: OptionsPolicy | None = None, **raw: str):
    limits = limits_for(who)
    policy = policy or OptionsPolicy(
        refused_partitions=tuple(partition_refusals(CONFIGS, who, RULES).items())
    )
    return parse_user_options(raw, limits, policy)


def errors_of(who: UserAccess, policy: OptionsPolicy | None = None, **raw: str) -> dict:
    with pytest.raises(UserOptionsError) as refused:
        parse(who, policy, **raw)
    return refused.value.errors


def test_defaults_are_the_default_account_and_the_associations_default_qos():
    options = parse(ALICE, partition="cpu")
    assert (options.account, options.qos) == ("physics", "normal")
    assert parse(ALICE, partition="chem").account == "chemistry"


@pytest.mark.parametrize(
    ("who", "raw", "field", "words"),
    [
        (BOB, {"partition": "cpu", "account": "chemistry"}, "account", "yours: physics"),
        (ALICE, {"partition": "cpu", "account": "geology"}, "account", "yours: physics, chemistry"),
        (ALICE, {"partition": "cpu", "qos": "gpu"}, "qos", "allowed: long, normal, short"),
        (ALICE, {"partition": "cpu", "account": "chemistry", "qos": "short"}, "qos", "chemistry"),
        (ALICE, {"partition": "cpu", "account": "-A"}, "account", "not a Slurm name"),
        (ALICE, {"partition": "cpu", "qos": "a,b"}, "qos", "not a Slurm name"),
        (ALICE, {"partition": "cpu", "qos": "short", "runtime": "3:00:00"}, "runtime", "QOS short"),
        (ALICE, {"partition": "cpu", "qos": "short", "nprocs": "5"}, "nprocs", "QOS short"),
        (BOB, {"partition": "chem"}, "partition", "you may not use chem"),
        (BOB, {"partition": "lab"}, "partition", "open to the groups mosslab only"),
    ],
)
def test_refusals_name_the_field_and_say_why(who, raw, field, words):
    errors = errors_of(who, **raw)
    assert field in errors, errors
    assert words in errors[field]


def test_the_admins_account_and_qos_win_and_are_the_only_values_accepted():
    policy = OptionsPolicy(fixed_account="chemistry", fixed_qos="long")
    options = parse(ALICE, policy, partition="cpu")
    assert (options.account, options.qos) == ("chemistry", "long")
    assert parse(ALICE, policy, partition="cpu", account="chemistry").account == "chemistry"
    errors = errors_of(ALICE, policy, partition="cpu", account="physics", qos="short")
    assert errors["account"] == "account: set to chemistry by this hub's administrator"
    assert errors["qos"] == "qos: set to long by this hub's administrator"


def test_without_accounting_a_well_formed_account_goes_to_slurm_as_given():
    limits = merge_partition_limits(CONFIGS, SINFO)
    options = parse_user_options({"partition": "cpu", "account": "geology"}, limits)
    assert (options.account, options.qos) == ("geology", "")
    assert parse_user_options({"partition": "cpu"}, limits).account == ""


def test_the_estimate_asks_about_the_account_and_qos_that_would_be_submitted():
    limits = limits_for(ALICE)
    options = parse(ALICE, partition="cpu", account="chemistry", qos="long")
    args = estimate_args(options, limits["cpu"], ScriptSettings(home_dir="/home/alice"))
    assert "--account=chemistry" in args and "--qos=long" in args
    # the admin's values win, in the estimate as in the script
    admin = ScriptSettings(home_dir="/home/alice", account="physics", qos="normal")
    args = estimate_args(options, limits["cpu"], admin)
    assert "--account=physics" in args and "--qos=normal" in args
    assert "--account=chemistry" not in args


# -- the page, from a spawner whose user is alice on the captured site ------------------------


def spawner_page(**traits):
    partitions = {
        name: {"jupyter_environments": {"default": {"path": "/opt/env/bin/"}}} for name in RULES
    }
    spawner = MOSlurmSpawner(
        partitions=partitions, user=types.SimpleNamespace(name="alice"), **traits
    )
    spawner.orm_spawner = types.SimpleNamespace(name="", user_options={}, server=None)
    snap = ClusterSnapshot(SINFO, (), datetime.now(timezone.utc), access=RULES)

    async def fixed_snapshot():
        return snap

    async def alice_access():
        return ALICE

    spawner.cluster_snapshot = fixed_snapshot
    spawner.user_access = alice_access
    html = asyncio.run(spawner.render_form_fragment("partition", "", {"moss_tab": [b"advanced"]}))
    return BeautifulSoup(html, "html.parser")


def test_the_page_offers_the_accounts_and_the_qos_with_their_limits():
    soup = spawner_page()
    accounts = [(o["value"], o.get_text()) for o in soup.select("select[name=account] option")]
    assert accounts == [("physics", "physics (your default)"), ("chemistry", "chemistry")]
    qos = [(o["value"], o.get_text()) for o in soup.select("select[name=qos] option")]
    assert qos == [
        ("long", "long (up to 2-00:00:00)"),
        ("normal", "normal (up to 1-00:00:00, default)"),
        ("short", "short (up to 02:00:00)"),
    ]
    assert soup.select_one("select[name=qos] option[selected]")["value"] == "normal"


def test_the_admins_account_and_qos_show_as_fixed():
    soup = spawner_page(req_account="chemistry", req_qos="long")
    assert soup.select("select[name=account], select[name=qos]") == []
    fixed = [(i["id"], i["value"]) for i in soup.select(".moss-charge input[readonly]")]
    assert fixed == [("moss-account", "chemistry"), ("moss-qos", "long")]
    assert "Set by this hub's administrators." in soup.select_one(".moss-charge").get_text(" ")
    # the limits shown are those of the admin's account and QOS
    assert "(account chemistry)" in soup.select_one("#moss-runtime-help").get_text(" ")


def test_a_user_who_may_use_none_of_the_partitions_gets_the_reasons_not_an_error():
    partitions = {"chem": {"jupyter_environments": {"default": {"path": "/opt/env/bin/"}}}}
    spawner = MOSlurmSpawner(
        partitions=partitions, user=types.SimpleNamespace(name="bob", spawners={})
    )
    spawner.orm_spawner = types.SimpleNamespace(name="", user_options={}, server=None)
    snap = ClusterSnapshot(SINFO, (), datetime.now(timezone.utc), access=RULES)

    async def fixed_snapshot():
        return snap

    async def bob_access():
        return BOB

    spawner.cluster_snapshot = fixed_snapshot
    spawner.user_access = bob_access
    page = BeautifulSoup(asyncio.run(spawner.render_options_form()), "html.parser")
    assert "chem: chem is open to the accounts chemistry only" in page.get_text(" ")
    fragment = asyncio.run(spawner.render_form_fragment("partition", "", {}))
    assert "None of the partitions this hub offers is open to you" in fragment
    with pytest.raises(InvalidUserOptions) as refused:
        asyncio.run(spawner.check_options({"partition": "chem"}))
    assert "partition: you may not use chem" in str(refused.value.log_message)
