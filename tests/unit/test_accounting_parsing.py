"""The accounting parsers (sacctmgr's QOS and associations, scontrol's partition access rules),
on real output captured from the accounting cluster and on hand-made variants.

Each ``accounting_*`` fixture is described in tests/fixtures/slurm/README.md (real or hand-made,
and the exact command). ``sacctmgr`` prints an association's limits and QOS with its parents'
already applied, so the hand-made files show inherited values as repeated figures.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from jupyterhub_moss.slurm.accounting import (
    QOS_ARGS,
    Association,
    JobLimits,
    QosInfo,
    UserAssociations,
    accounting_is_off,
    parse_qos,
    parse_tres,
    parse_user_associations,
    safe_slurm_name,
    user_association_args,
)
from jupyterhub_moss.slurm.partition_access import (
    PARTITION_ARGS,
    PartitionAccess,
    parse_partition_access,
)
from jupyterhub_moss.slurm.partitions import parse_sinfo

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent.parent / "fixtures" / "slurm"
HOUR = 3600
DAY = 24 * HOUR


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def warnings_while(parse, name: str, caplog: pytest.LogCaptureFixture) -> str:
    """What ``parse`` logged on the fixture ``name``: unreadable input is skipped, not silent."""
    with caplog.at_level(logging.WARNING, logger="jupyterhub_moss.slurm"):
        parse(fixture(name))
    return caplog.text


# ---------------------------------------------------------------------------------------------
# The argument lists: no header, "|"-separated, so the parsers' field counts hold


def test_qos_args_ask_for_parsable_output_without_header():
    assert QOS_ARGS[:2] == ("-n", "-P")
    assert QOS_ARGS[-1] == "format=Name,MaxWall,MaxTRES,Flags"


def test_association_args_ask_for_every_user_at_once_sorted_and_deduplicated():
    args = user_association_args(["bob", "alice", "bob"])
    assert args[:2] == ["-n", "-P"]
    assert "name=alice,bob" in args
    assert "withassoc" in args


def test_partition_args_include_hidden_partitions_one_per_line():
    assert PARTITION_ARGS == ("-a", "-o", "show", "partition")


# ---------------------------------------------------------------------------------------------
# QOS: real


def test_real_qos():
    qos = parse_qos(fixture("accounting_qos.txt"))
    assert qos == {
        "normal": QosInfo("normal", JobLimits(max_runtime=DAY)),
        "short": QosInfo("short", JobLimits(max_runtime=2 * HOUR, max_cpus=4)),
        "long": QosInfo("long", JobLimits(max_runtime=2 * DAY)),
        "gpu": QosInfo("gpu", JobLimits(max_runtime=12 * HOUR, max_gpus=1), ("DenyOnLimit",)),
    }


# ---------------------------------------------------------------------------------------------
# QOS: hand-made


@pytest.fixture
def handmade_qos() -> dict[str, QosInfo]:
    return parse_qos(fixture("accounting_handmade_qos.txt"))


def test_handmade_qos_reads_every_good_line(handmade_qos):
    assert list(handmade_qos) == [
        "normal",
        "short",
        "long",
        "a100",
        "gpu",
        "part_gpu",
        "nolimit",
        "scavenger",
    ]


def test_handmade_qos_memory_is_in_megabytes(handmade_qos):
    assert handmade_qos["short"].limits == JobLimits(
        max_runtime=2 * HOUR, max_cpus=4, max_memory_mb=8192
    )
    assert handmade_qos["gpu"].limits.max_memory_mb == 128 * 1024


def test_handmade_qos_typed_gpus_count_as_gpus(handmade_qos):
    assert handmade_qos["a100"].limits.max_gpus == 2
    assert handmade_qos["a100"].flags == ("DenyOnLimit",)


def test_handmade_qos_an_untyped_gpu_figure_wins_over_typed_ones(handmade_qos):
    assert handmade_qos["gpu"].limits == JobLimits(
        max_runtime=12 * HOUR, max_cpus=16, max_gpus=4, max_memory_mb=128 * 1024
    )
    assert handmade_qos["gpu"].flags == ("DenyOnLimit", "OverPartQOS")


def test_handmade_qos_without_limits(handmade_qos):
    assert handmade_qos["nolimit"] == QosInfo("nolimit")
    assert handmade_qos["part_gpu"].limits == JobLimits()
    assert handmade_qos["part_gpu"].flags == ("PartitionMaxNodes", "PartitionTimeLimit")
    assert handmade_qos["long"].limits == JobLimits(max_runtime=7 * DAY, max_nodes=4)


def test_handmade_qos_an_unreadable_tres_entry_drops_that_entry_only(handmade_qos, caplog):
    assert handmade_qos["scavenger"].limits == JobLimits(max_runtime=4 * HOUR, max_nodes=1)
    assert "cpu=lots" in warnings_while(parse_qos, "accounting_handmade_qos.txt", caplog)


def test_handmade_qos_unreadable_lines_are_skipped_and_logged(handmade_qos, caplog):
    assert not {"broken", "tooshort", "toolong", ""} & set(handmade_qos)
    logged = warnings_while(parse_qos, "accounting_handmade_qos.txt", caplog)
    assert "someday" in logged
    assert "tooshort" in logged
    assert "toolong" in logged


def test_qos_of_nothing_is_empty():
    assert parse_qos("") == {}
    assert parse_qos("\n\n") == {}


# ---------------------------------------------------------------------------------------------
# Users' associations: real


def test_real_associations_of_alice_and_bob():
    users = parse_user_associations(fixture("accounting_users_alice_bob.txt"))
    assert set(users) == {"alice", "bob"}
    alice = users["alice"]
    assert alice.default_account == "physics"
    assert alice.associations == (
        Association(
            "chemistry",
            "",
            ("gpu", "long", "normal"),
            "normal",
            JobLimits(max_runtime=8 * HOUR, max_cpus=6),
        ),
        Association("physics", "gpu", ("gpu", "normal"), "normal"),
        Association("physics", "", ("long", "normal", "short"), "normal"),
    )
    assert users["bob"] == UserAssociations(
        "bob", "physics", (Association("physics", "", ("long", "normal", "short"), "normal"),)
    )


def test_real_alice_on_gpu_gets_the_gpu_association_of_physics():
    alice = parse_user_associations(fixture("accounting_users_alice_bob.txt"))["alice"]
    on_gpu = alice.for_partition("gpu")
    assert set(on_gpu) == {"physics", "chemistry"}
    assert on_gpu["physics"].partition == "gpu"
    assert on_gpu["physics"].qos == ("gpu", "normal")
    on_cpu = alice.for_partition("cpu")
    assert on_cpu["physics"].partition == ""
    assert on_cpu["physics"].qos == ("long", "normal", "short")


def test_real_unknown_user_has_no_associations():
    assert fixture("accounting_users_unknown.txt") == ""
    assert parse_user_associations(fixture("accounting_users_unknown.txt")) == {}


# ---------------------------------------------------------------------------------------------
# Users' associations: hand-made


@pytest.fixture
def handmade_users() -> dict[str, UserAssociations]:
    return parse_user_associations(fixture("accounting_handmade_users.txt"))


def test_handmade_many_accounts(handmade_users):
    alice = handmade_users["alice"]
    assert [a.account for a in alice.associations] == [
        "physics",
        "physics",
        "chemistry",
        "biology",
        "astro",
        "geology",
        "maths",
    ]
    assert set(alice.for_partition("cpu")) == {
        "physics",
        "chemistry",
        "biology",
        "astro",
        "geology",
    }


def test_handmade_values_pushed_from_the_account_reach_every_user(handmade_users):
    """physics' MaxWall, MaxTRES and QOS are set on the account; sacctmgr prints them on each
    user's association, so alice's and carol's read the same without walking the tree."""
    alice_physics = handmade_users["alice"].for_partition("cpu")["physics"]
    carol_physics = handmade_users["carol"].for_partition("cpu")["physics"]
    assert alice_physics == carol_physics
    assert alice_physics.limits == JobLimits(max_runtime=DAY, max_cpus=16, max_memory_mb=65536)
    assert alice_physics.qos == ("long", "normal", "short")


def test_handmade_partition_association_wins_over_the_general_one(handmade_users):
    alice = handmade_users["alice"]
    on_gpu = alice.for_partition("gpu")["physics"]
    assert on_gpu.partition == "gpu"
    assert on_gpu.qos == ("gpu", "normal")
    assert on_gpu.default_qos == "gpu"
    assert on_gpu.limits == JobLimits(
        max_runtime=12 * HOUR, max_cpus=8, max_gpus=2, max_memory_mb=16384
    )
    assert alice.for_partition("cpu")["physics"].partition == ""


@pytest.mark.parametrize("reverse", [False, True])
def test_partition_association_wins_whatever_the_line_order(reverse):
    general = Association("physics", "", ("normal",), "normal")
    on_gpu = Association("physics", "gpu", ("gpu",), "gpu")
    lines = (on_gpu, general) if reverse else (general, on_gpu)
    user = UserAssociations("alice", "physics", lines)
    assert user.for_partition("gpu") == {"physics": on_gpu}
    assert user.for_partition("cpu") == {"physics": general}


def test_handmade_an_account_only_on_another_partition_is_absent(handmade_users):
    alice = handmade_users["alice"]
    assert "maths" not in alice.for_partition("cpu")
    assert alice.for_partition("debug")["maths"].limits == JobLimits(max_runtime=HOUR)


def test_handmade_association_without_limits(handmade_users):
    geology = handmade_users["alice"].for_partition("cpu")["geology"]
    assert geology == Association("geology", "", ("normal",), "", JobLimits())
    assert handmade_users["alice"].for_partition("cpu")["astro"].limits == JobLimits(max_nodes=2)


def test_handmade_user_without_default_account(handmade_users):
    assert handmade_users["carol"].default_account == ""
    assert len(handmade_users["carol"].associations) == 1


def test_handmade_unreadable_tres_entry_keeps_the_association(handmade_users, caplog):
    dave_gpu = handmade_users["dave"].for_partition("gpu")["chemistry"]
    assert dave_gpu.limits == JobLimits(max_runtime=6 * HOUR, max_gpus=1)
    logged = warnings_while(parse_user_associations, "accounting_handmade_users.txt", caplog)
    assert "cpu=lots" in logged


def test_handmade_unreadable_lines_are_skipped_and_logged(handmade_users, caplog):
    assert "broken" not in {a.account for a in handmade_users["alice"].associations}
    assert "bob" not in handmade_users  # his one line has too few fields
    logged = warnings_while(parse_user_associations, "accounting_handmade_users.txt", caplog)
    assert "someday" in logged
    assert "5 fields" in logged


def test_handmade_lines_without_user_or_account_are_no_association(handmade_users):
    assert set(handmade_users) == {"alice", "carol", "dave"}  # eve's line has no account


# ---------------------------------------------------------------------------------------------
# TRES strings


@pytest.mark.parametrize(
    ("text", "tres"),
    [
        ("", {}),
        ("cpu=4", {"cpu": 4}),
        ("cpu=4,gres/gpu=1,mem=16G,node=2", {"cpu": 4, "gres/gpu": 1, "mem": 16384, "node": 2}),
        ("mem=16G", {"mem": 16384}),
        ("mem=16000", {"mem": 16000}),  # megabytes when no unit
        ("mem=16000M", {"mem": 16000}),
        ("mem=2T", {"mem": 2 * 1024 * 1024}),
        ("mem=2g", {"mem": 2048}),
        ("gres/gpu:a100=2", {"gres/gpu": 2}),
        ("gres/gpu:a100=2,gres/gpu:v100=4", {"gres/gpu": 4}),
        ("gres/gpu=1,gres/gpu:a100=2", {"gres/gpu": 1}),
        ("billing=8", {"billing": 8}),
        (" cpu=4 , node=1 ", {"cpu": 4, "node": 1}),
    ],
)
def test_parse_tres(text, tres):
    assert parse_tres(text) == tres


@pytest.mark.parametrize("text", ["cpu=lots", "cpu=4K", "mem=1.5T", "mem=-1", "cpu"])
def test_parse_tres_skips_unreadable_entries(text):
    assert parse_tres(text) == {}


# ---------------------------------------------------------------------------------------------
# User names sacctmgr can be asked about


@pytest.mark.parametrize("name", ["alice", "bob", "mossbench", "a.b", "j_doe", "x@lab", "u-1"])
def test_safe_slurm_names(name):
    assert safe_slurm_name(name)
    assert f"name={name}" in user_association_args([name])


@pytest.mark.parametrize(
    "name",
    [
        "alice,root",  # a second user
        "alice=x",  # a key
        "a b",
        "alice ",
        "-alice",  # an option
        "alice\n",
        "",
        ".hidden",
        "ali\u0441e",  # Cyrillic s
        "x" * 65,
    ],
)
def test_unsafe_slurm_names_are_refused(name):
    assert not safe_slurm_name(name)
    with pytest.raises(ValueError):
        user_association_args([name])


def test_unsafe_names_are_left_out_of_a_list_with_safe_ones():
    args = user_association_args(["alice", "bob,root", "-x", "carol=1"])
    assert "name=alice" in args
    assert not any("root" in arg or "carol" in arg or arg == "-x" for arg in args)


# ---------------------------------------------------------------------------------------------
# Partition access rules: real


def test_real_partition_access():
    access = parse_partition_access(fixture("accounting_partitions_single.txt"))
    assert list(access) == ["cpu", "gpu", "debug", "chem", "lab", "hidden"]
    for name in ("cpu", "gpu", "debug"):
        assert access[name] == PartitionAccess(name)
    assert access["chem"].allow_accounts == {"chemistry"}
    assert access["chem"].account_allowed("chemistry")
    assert not access["chem"].account_allowed("physics")
    assert access["lab"].allow_groups == {"mosslab"}
    assert access["lab"].group_refusal(frozenset({"alice", "mosslab"})) is None
    assert access["lab"].group_refusal(frozenset({"bob"})) == (
        "lab is open to the groups mosslab only"
    )
    assert access["hidden"].hidden
    assert access["hidden"].group_refusal(frozenset({"bob"})) is None


# ---------------------------------------------------------------------------------------------
# Partition access rules: hand-made


@pytest.fixture
def handmade_access() -> dict[str, PartitionAccess]:
    return parse_partition_access(fixture("accounting_handmade_partitions.txt"))


def test_handmade_partitions_unreadable_lines_are_skipped_and_logged(handmade_access, caplog):
    assert list(handmade_access) == [
        "open",
        "groups",
        "denyaccounts",
        "denyqos",
        "admin",
        "a100",
        "empty",
    ]
    logged = warnings_while(parse_partition_access, "accounting_handmade_partitions.txt", caplog)
    assert logged.count("without a name") == 2


@pytest.mark.parametrize("name", ["open", "empty"])
def test_handmade_all_and_empty_lists_let_everyone_in(handmade_access, name):
    access = handmade_access[name]
    assert access == PartitionAccess(name)
    assert access.account_allowed("anything")
    assert access.qos_allowed("anything")
    assert access.group_refusal(frozenset()) is None


def test_handmade_allow_lists(handmade_access):
    access = handmade_access["groups"]
    assert access.allow_groups == {"mosslab", "admins"}
    assert access.allow_accounts == {"physics", "chemistry"}
    assert access.allow_qos == {"normal", "short"}
    assert access.group_refusal(frozenset({"admins"})) is None
    assert access.group_refusal(frozenset({"users"})) == (
        "groups is open to the groups admins, mosslab only"
    )
    assert not access.account_allowed("biology")
    assert access.qos_allowed("short")
    assert not access.qos_allowed("long")


def test_handmade_deny_accounts(handmade_access):
    access = handmade_access["denyaccounts"]
    assert access.allow_accounts is None
    assert access.deny_accounts == {"guests", "students"}
    assert not access.account_allowed("students")
    assert access.account_allowed("physics")


def test_handmade_deny_qos(handmade_access):
    access = handmade_access["denyqos"]
    assert access.allow_qos is None
    assert access.deny_qos == {"long", "scavenger"}
    assert not access.qos_allowed("long")
    assert access.qos_allowed("normal")


def test_handmade_root_only(handmade_access):
    access = handmade_access["admin"]
    assert access.root_only
    assert access.hidden
    assert access.group_refusal(frozenset({"root", "wheel"})) == "admin is for root only"


def test_handmade_partition_qos(handmade_access):
    assert handmade_access["a100"].qos == "part_gpu"
    assert handmade_access["open"].qos == ""  # N/A
    assert handmade_access["empty"].qos == ""  # (null)


def test_a_deny_list_wins_over_an_allow_list():
    access = PartitionAccess(
        "p",
        allow_accounts=frozenset({"a"}),
        deny_accounts=frozenset({"a"}),
        deny_qos=frozenset({"q"}),
    )
    assert not access.account_allowed("a")
    assert not access.qos_allowed("q")


# ---------------------------------------------------------------------------------------------
# sinfo on the accounting cluster: the hidden partition is listed with its own limits


def test_real_sinfo_lists_the_hidden_partition_with_its_time_limit():
    partitions = parse_sinfo(fixture("accounting_sinfo_single.txt"))
    assert list(partitions) == ["cpu", "chem", "debug", "gpu", "hidden", "lab"]
    assert partitions["hidden"].max_runtime == 3 * DAY
    assert partitions["chem"].max_runtime == 4 * HOUR
    assert partitions["lab"].max_runtime == 6 * HOUR
    assert partitions["hidden"].cpus_per_node == 8


# ---------------------------------------------------------------------------------------------
# Telling "no accounting database" from a refusal


@pytest.mark.parametrize("name", ["accounting_off_sacctmgr.err", "accounting_off_sacct.err"])
def test_real_accounting_off_messages(name):
    assert accounting_is_off(fixture(name))


@pytest.mark.parametrize(
    "name",
    [
        "accounting_sbatch_no_association.err",
        "accounting_sbatch_partition_group.err",
        "accounting_sbatch_qos_not_allowed.err",
        "accounting_sbatch_unknown_account.err",
        "accounting_squeue_partition_account.txt",
        "accounting_squeue_qos_max_wall.txt",
    ],
)
def test_real_refusals_are_not_accounting_off(name):
    text = fixture(name)
    assert text.strip()
    assert not accounting_is_off(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        # slurmdbd down: accounting is on, the database just does not answer
        "sacctmgr: error: Sending PersistInit msg: Connection refused\n"
        "sacctmgr: error: Problem talking to the database: Connection refused",
    ],
)
def test_other_errors_are_not_accounting_off(text):
    assert not accounting_is_off(text)
