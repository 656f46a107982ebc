"""sbatch's own option table, and what users may type in ``options``.

The table (jupyterhub_moss/slurm_option_table.py) must match what Slurm's source says sbatch
accepts in every supported release (tests/fixtures/slurm/sbatch_options_by_release.json, made by
``dev/sbatch-option-table``). Every denied option is refused under every spelling sbatch would
read as it, before anything reaches Slurm; every allowed one gets through in its full name; and
what the admin sets (``req_account``, ``req_qos``, ``req_reservation``, ``req_options``) cannot
be replaced.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.limits import merge_partition_limits
from jupyterhub_moss.options import OptionsPolicy, UserOptionsError, parse_user_options
from jupyterhub_moss.sbatch_options import (
    DEFAULT_DENIED_SBATCH_OPTIONS,
    SbatchOptionError,
    admin_locked_options,
    parse_sbatch_options,
)
from jupyterhub_moss.slurm.partitions import parse_sinfo
from jupyterhub_moss.slurm_option_table import (
    SBATCH_OPTIONS,
    SLURM_VERSIONS,
    SbatchOption,
    options_matching,
)
from jupyterhub_moss.spawner import MOSlurmSpawner

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BY_RELEASE: dict[str, dict[str, dict[str, str]]] = json.loads(
    (FIXTURES / "slurm" / "sbatch_options_by_release.json").read_text()
)
ENVIRONMENTS = {"default": {"path": "/opt/jupyter/bin"}}
PARTITIONS = {
    "cpu": {"gpu": "", "jupyter_environments": ENVIRONMENTS},
    "gpu": {"jupyter_environments": ENVIRONMENTS},
}
LIMITS = merge_partition_limits(
    load_partitions(PARTITIONS),
    parse_sinfo((FIXTURES / "slurm" / "sinfo_single_idle.txt").read_text()),
)
DENIED = [o for o in SBATCH_OPTIONS if o.denied]
ALLOWED = [o for o in SBATCH_OPTIONS if not o.denied]
HAS_ARG = {"required_argument": "required", "optional_argument": "optional", "no_argument": "none"}


def release(tag: str) -> str:
    return ".".join(tag.split("-")[1:3])  # slurm-22-05-11-1 -> 22.05


def errors_of(options: str, policy: OptionsPolicy | None = None) -> dict[str, str]:
    with pytest.raises(UserOptionsError) as caught:
        parse_user_options({"partition": "cpu", "options": options}, LIMITS, policy)
    return caught.value.errors


def accepted(options: str, policy: OptionsPolicy | None = None) -> list[str]:
    return parse_user_options({"partition": "cpu", "options": options}, LIMITS, policy).options


def a_value(option: SbatchOption) -> str:
    return {"required": "=1", "optional": "=1", "none": ""}[option.value]


# ---------------------------------------------------------------------------------------------
# The table is Slurm's


def test_the_table_was_read_from_every_supported_release():
    assert [release(tag) for tag in BY_RELEASE] == list(SLURM_VERSIONS)


def test_the_table_has_every_sbatch_option_of_every_release_and_nothing_else():
    in_source = set().union(*BY_RELEASE.values())
    assert {o.name for o in SBATCH_OPTIONS} == in_source
    assert len(SBATCH_OPTIONS) == len(in_source)  # no name twice


@pytest.mark.parametrize("option", SBATCH_OPTIONS, ids=lambda o: o.name)
def test_each_entry_says_what_slurms_source_says(option):
    present = [release(tag) for tag, table in BY_RELEASE.items() if option.name in table]
    first, last = SLURM_VERSIONS.index(present[0]), SLURM_VERSIONS.index(present[-1])
    gaps = tuple(v for v in SLURM_VERSIONS[first : last + 1] if v not in present)
    assert (option.since, option.until or SLURM_VERSIONS[-1], option.missing_in) == (
        present[0],
        present[-1],
        gaps,
    )
    newest = [table[option.name] for table in BY_RELEASE.values() if option.name in table]
    val = newest[-1]["val"]
    assert option.short == (val.strip("'") if val.startswith("'") else "")
    # one of the releases' value rules (get-user-env and requeue changed theirs)
    assert option.value in {HAS_ARG[entry["has_arg"]] for entry in newest}
    # aliases are the entries that share a getopt value
    sharing = sorted(
        name
        for table in BY_RELEASE.values()
        for name, entry in table.items()
        if entry["val"] == val and name != option.name
    )
    if option.same_as:
        assert option.same_as in sharing
    else:
        assert all(o.same_as == option.name for o in SBATCH_OPTIONS if o.name in sharing)


def test_every_alias_is_treated_like_the_option_it_stands_for():
    for option in SBATCH_OPTIONS:
        if option.same_as:
            main = next(o for o in SBATCH_OPTIONS if o.name == option.same_as)
            assert bool(option.denied) == bool(main.denied), option.name


def test_the_default_deny_list_is_the_tables():
    assert {f"--{o.name}" for o in DENIED} == DEFAULT_DENIED_SBATCH_OPTIONS


# ---------------------------------------------------------------------------------------------
# Every denied option is refused, by every spelling sbatch reads as it


def spellings(option: SbatchOption) -> list[str]:
    """Every way to write ``option`` that getopt_long would take for it (or might, in some
    release): each prefix, ``=value`` or a separate value, the short form."""
    value = a_value(option)
    words = []
    for end in range(1, len(option.name) + 1):
        prefix = option.name[:end]
        if option in options_matching(prefix):
            words.append(f"--{prefix}{value}")
    if option.value == "required":
        words.append(f"--{option.name} 1")
    if option.short:
        words.append(f"-{option.short}" + (" 1" if option.value == "required" else ""))
        if option.value == "required":
            words.append(f"-{option.short}1")
    return words


@pytest.mark.parametrize("option", DENIED, ids=lambda o: o.name)
def test_a_denied_option_is_refused_by_every_spelling(option):
    for text in spellings(option):
        errors = errors_of(f"--comment=ok {text}")
        assert list(errors) == ["options"], text
        assert errors["options"].startswith("options: "), text
        assert "is not allowed in extra options" in errors["options"], text


def test_the_spellings_cover_prefixes_aliases_and_short_forms():
    tasks = next(o for o in SBATCH_OPTIONS if o.name == "tasks-per-node")
    assert "--tasks=1" in spellings(tasks) and "--t=1" in spellings(tasks)
    assert "-p 1" in spellings(next(o for o in SBATCH_OPTIONS if o.name == "partition"))
    assert sum(len(spellings(o)) for o in DENIED) > 900


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("--tasks-per-node=4", "--tasks-per-node (--ntasks-per-node) is not allowed"),
        ("--tasks=4", "--tasks (an abbreviation of --ntasks-per-node) is not allowed"),
        ("--cpus=4", "--cpus (an abbreviation of --cpus-per-gpu) is not allowed"),
        ("--mail-user=x@example.org", "--mail-user is not allowed"),
        ("-s", "-s (--oversubscribe) is not allowed"),
        ("--exclusive", "--exclusive is not allowed"),
        ("--exclusive=user", "--exclusive is not allowed"),
        ("--extra-node-info=2:4:2", "--extra-node-info is not allowed"),
        ("-B 2", "-B (--extra-node-info) is not allowed"),
    ],
)
def test_the_message_names_the_option_sbatch_would_take(text, message):
    assert message in errors_of(text)["options"]


# ---------------------------------------------------------------------------------------------
# Every allowed option gets through, in its full name


def read_as_a_denied_option_somewhere(option: SbatchOption) -> bool:
    """Whether some supported sbatch reads ``--name`` as a denied option (an older one that
    lacks the option takes the name as an abbreviation)."""
    return any(o.denied for o in options_matching(option.name))


SHADOWED = [o for o in ALLOWED if read_as_a_denied_option_somewhere(o)]


def test_only_extra_is_read_as_a_denied_option_by_an_older_sbatch():
    """22.05 has no --extra: its getopt takes --extra=x for --extra-node-info=x (-B)."""
    assert [o.name for o in SHADOWED] == ["extra"]
    assert errors_of("--extra=rack=1")["options"] == (
        "options: --extra (an abbreviation of --extra-node-info) is not allowed in extra "
        "options (the hub or the form's fields set it)"
    )


@pytest.mark.parametrize("option", [o for o in ALLOWED if o not in SHADOWED], ids=lambda o: o.name)
def test_an_allowed_option_gets_through_in_its_full_name(option):
    value = a_value(option)
    assert accepted(f"--{option.name}{value}") == [f"--{option.name}{value}"]
    if option.short:
        assert accepted(f"-{option.short}{value[1:]}") == [f"--{option.name}{value}"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("--nosuch=1", "--nosuch is not an sbatch option"),
        ("--cpu_bind=none", "not a valid option name"),  # srun's, and not sbatch's spelling
        ("--no-", "--no- is ambiguous (could be --no-kill, --no-requeue); write it in full"),
        ("--comment", "--comment needs a value (--comment=VALUE)"),
        ("--comment --contiguous", "--comment needs a value"),
        ("-A", "-A (--account) needs a value"),
        ("--contiguous=yes", "--contiguous takes no value"),
        ("--comment=", "--comment needs a value"),
    ],
)
def test_names_and_values_follow_sbatchs_rules(text, message):
    assert message in errors_of(text)["options"]


def test_short_flags_come_one_per_word():
    with pytest.raises(SbatchOptionError, match="give one short option per word"):
        parse_sbatch_options("-Hv", denied=())


def test_an_optional_value_is_only_read_after_an_equals_sign():
    # getopt_long reads `--no-kill off` as the flag and a stray word, as we do
    assert accepted("--no-kill=off") == ["--no-kill=off"]
    assert "'off' is not an option" in errors_of("--no-kill off")["options"]


def test_a_value_that_looks_like_an_option_needs_the_equals_form():
    assert accepted("--comment=--partition=gpu") == ["--comment=--partition=gpu"]


# ---------------------------------------------------------------------------------------------
# The admin's lists


def test_admins_may_deny_more_by_any_spelling_and_unknown_names_too():
    policy = OptionsPolicy(
        denied_sbatch_options=DEFAULT_DENIED_SBATCH_OPTIONS | {"-C", "--some-future-option"}
    )
    assert "--constraint is not allowed" in errors_of("--constraint=x", policy)["options"]
    assert "is not allowed" in errors_of("--some-fut=1", policy)["options"]


def test_admins_may_allow_a_denied_option_by_taking_it_off_the_list():
    policy = OptionsPolicy(denied_sbatch_options=DEFAULT_DENIED_SBATCH_OPTIONS - {"--mail-user"})
    assert accepted("--mail-user=me@example.org", policy) == ["--mail-user=me@example.org"]


def test_an_allow_list_takes_options_by_any_spelling_and_names_unknown_to_the_table():
    policy = OptionsPolicy(allowed_sbatch_options=frozenset({"-C", "--new-in-26"}))
    assert accepted("--const=fast -C slow", policy) == ["--constraint=fast", "--constraint=slow"]
    assert accepted("--new-in-26=1", policy) == ["--new-in-26=1"]
    assert "not allowed on this hub" in errors_of("--comment=x", policy)["options"]


def test_the_admins_own_options_may_name_options_the_table_does_not_know():
    text = "--hold --new-in-26 value -C fast"
    assert parse_sbatch_options(text, denied=(), trusted=True) == [
        "--hold",
        "--new-in-26=value",
        "--constraint=fast",
    ]
    with pytest.raises(SbatchOptionError, match="not an sbatch option"):
        parse_sbatch_options("--new-in-26=value")


# ---------------------------------------------------------------------------------------------
# What the admin sets, users cannot replace


LOCKED = OptionsPolicy(
    locked_sbatch_options=admin_locked_options(
        "-C fast --mail-type FAIL --no-kill", account="physics", qos="normal", reservation="maint"
    )
)


def test_the_admins_locks_are_main_names():
    assert LOCKED.locked_sbatch_options == {
        "constraint",
        "mail-type",
        "no-kill",
        "account",
        "qos",
        "reservation",
    }
    assert admin_locked_options("") == frozenset()


@pytest.mark.parametrize(
    "text",
    [
        "--account=mine",
        "-A mine",
        "-Amine",
        "--accou=mine",
        "--qos=high",
        "-q high",
        "--constraint=slow",
        "--const=slow",
        "-C slow",
        "--mail-type=ALL",
        "--mail-t=ALL",
        "--no-kill",
        "-k",
    ],
)
def test_a_user_option_replacing_the_admins_is_refused_naming_the_field(text):
    errors = errors_of(f"--comment=ok {text}", LOCKED)
    assert list(errors) == ["options"]
    assert errors["options"].startswith("options: ")
    assert "is set by this hub's administrator and cannot be changed here" in errors["options"]


def test_a_user_reservation_is_refused_when_the_admin_sets_one():
    with pytest.raises(UserOptionsError) as caught:
        parse_user_options({"partition": "cpu", "reservation": "mine"}, LIMITS, LOCKED)
    assert caught.value.errors == {
        "reservation": "reservation: set by this hub's administrator; leave it empty"
    }
    assert parse_user_options({"partition": "cpu"}, LIMITS, LOCKED).reservation == ""


def test_options_the_admin_does_not_set_stay_open():
    assert accepted("--comment=x --begin=now+1hour", LOCKED) == [
        "--comment=x",
        "--begin=now+1hour",
    ]
    assert accepted("--account=mine -q high") == ["--account=mine", "--qos=high"]


def test_the_spawners_policy_carries_the_req_traits():
    spawner = MOSlurmSpawner(
        partitions=PARTITIONS,
        user=types.SimpleNamespace(name="alice"),
        req_account="physics",
        req_qos="",
        req_reservation="maint",
        req_options="--constraint=fast -k",
    )
    assert spawner.options_policy().locked_sbatch_options == {
        "account",
        "reservation",
        "constraint",
        "no-kill",
    }
    assert (
        MOSlurmSpawner(partitions=PARTITIONS, user=types.SimpleNamespace(name="alice"))
        .options_policy()
        .locked_sbatch_options
        == frozenset()
    )
