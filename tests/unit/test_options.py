"""The one user-options model: what each field accepts, what it refuses, and what it says."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.limits import merge_partition_limits
from jupyterhub_moss.option_fields import parse_runtime
from jupyterhub_moss.options import (
    FIELD_NAMES,
    OptionsPolicy,
    UserOptions,
    UserOptionsError,
    parse_user_options,
    salvage_saved_options,
)
from jupyterhub_moss.request_values import flatten_form, normalise_query
from jupyterhub_moss.slurm.partitions import parse_sinfo
from jupyterhub_moss.slurm.times import format_slurm_duration as format_runtime

pytestmark = pytest.mark.unit

SINFO = Path(__file__).resolve().parents[1] / "fixtures" / "slurm" / "sinfo_single_idle.txt"
ENVIRONMENTS = {
    "default": {"description": "Default", "path": "/opt/jupyter/bin"},
    "mods": {"modules": "python/3.11 gcc"},
    "image": {"path": "/images/jupyter.sif"},
}
# The project's one-node cluster: 8 CPUs, 8000 MB, 2 fake GPUs; cpu 1 day, gpu 12 h, debug 1 h.
LIMITS = merge_partition_limits(
    load_partitions(
        {
            "cpu": {"gpu": "", "jupyter_environments": ENVIRONMENTS},
            "gpu": {"jupyter_environments": ENVIRONMENTS},
            "debug": {"gpu": "", "jupyter_environments": {"only": {"modules": "jupyter"}}},
        }
    ),
    parse_sinfo(SINFO.read_text()),
)


def parse(raw: dict, policy: OptionsPolicy | None = None) -> UserOptions:
    return parse_user_options(raw, LIMITS, policy or OptionsPolicy())


def errors_of(raw: dict, policy: OptionsPolicy | None = None) -> dict[str, str]:
    with pytest.raises(UserOptionsError) as caught:
        parse(raw, policy)
    return caught.value.errors


# ---------------------------------------------------------------------------------------------
# Defaults


def test_partition_alone_gets_sensible_defaults():
    options = parse({"partition": "cpu"})
    assert options == UserOptions(
        partition="cpu",
        nprocs=1,
        ngpus=0,
        memory="",
        runtime="01:00:00",
        reservation="",
        options=[],
        output=False,
        default_url="",
        root_dir="",
        environment_id="default",
        environment_path="",
        environment_modules="",
    )


def test_defaults_follow_policy_but_never_exceed_the_partition():
    policy = OptionsPolicy(default_nprocs=16, default_runtime=4 * 3600)
    assert parse({"partition": "cpu"}, policy).nprocs == 8
    assert parse({"partition": "cpu"}, policy).runtime == "04:00:00"
    assert parse({"partition": "debug"}, policy).runtime == "01:00:00"
    assert parse({"partition": "debug"}).environment_id == "only"


def test_partition_is_required_unless_policy_names_a_default():
    assert errors_of({}) == {"partition": "partition: required; one of: cpu, gpu, debug"}
    assert parse({}, OptionsPolicy(default_partition="gpu")).partition == "gpu"


# ---------------------------------------------------------------------------------------------
# Good values, normalised


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("nprocs", "4", 4),
        ("nprocs", " 8 ", 8),
        ("nprocs", 2, 2),
        ("nprocs", ["3"], 3),
        ("ngpus", "", 0),
        ("ngpus", "0", 0),
        ("memory", "512", "512M"),
        ("memory", "512m", "512M"),
        ("memory", "7G", "7G"),
        ("memory", "7GB", "7G"),
        ("memory", "8000M", "8000M"),
        ("memory", "0", "0"),
        ("memory", "1024K", "1024K"),
        ("runtime", "90", "01:30:00"),
        ("runtime", "2:00:00", "02:00:00"),
        ("runtime", "2:00", "00:02:00"),  # Slurm: minutes:seconds
        ("runtime", "0:30", "00:00:30"),
        ("runtime", "1-0", "1-00:00:00"),
        ("runtime", "1-00:00:00", "1-00:00:00"),
        ("runtime", "0-12:30", "12:30:00"),
        ("runtime", "23:59:59", "23:59:59"),
        ("reservation", "maint_1", "maint_1"),
        ("reservation", "team.a-b", "team.a-b"),
        ("options", "", []),
        ("options", "--comment=hello", ["--comment=hello"]),
        ("options", "--constraint=fast --contiguous", ["--constraint=fast", "--contiguous"]),
        ("options", "--mail-type END", ["--mail-type=END"]),
        ("options", "-A acct -q high", ["--account=acct", "--qos=high"]),
        ("options", "-Aacct", ["--account=acct"]),
        ("options", "--comment='two words'", ["--comment=two words"]),
        ("options", "--begin=now+1hour -k", ["--begin=now+1hour", "--no-kill"]),
        ("options", "--mail-t END --const fast", ["--mail-type=END", "--constraint=fast"]),
        ("output", "true", True),
        ("output", "on", True),
        ("output", "1", True),
        ("output", "YES", True),
        ("output", True, True),
        ("output", "false", False),
        ("output", "off", False),
        ("output", "", False),
        ("output", False, False),
        ("default_url", "/lab", "/lab"),
        ("default_url", "/tree", "/tree"),
        ("default_url", "/lab/tree/work/analysis.ipynb", "/lab/tree/work/analysis.ipynb"),
        ("default_url", "/lab?reset", "/lab?reset"),
        ("root_dir", "/", "/"),
        ("root_dir", "/data/project", "/data/project"),
        ("root_dir", "~", "~"),
        ("root_dir", "~/work", "~/work"),
        ("root_dir", "~/my work", "~/my work"),
        ("environment_id", "mods", "mods"),
        ("environment_id", "", "default"),
    ],
)
def test_good_value_is_accepted_and_normalised(field, raw, expected):
    assert getattr(parse({"partition": "cpu", field: raw}), field) == expected


def test_gpus_within_the_partition():
    options = parse({"partition": "gpu", "ngpus": "2", "nprocs": 8})
    assert (options.ngpus, options.nprocs) == (2, 8)


def test_runtime_up_to_the_limit_exactly():
    assert parse({"partition": "gpu", "runtime": "720"}).runtime == "12:00:00"
    assert parse({"partition": "debug", "runtime": "1:00:00"}).runtime_seconds == 3600


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5", 300),
        ("5:30", 330),
        ("1:00:00", 3600),
        ("100:00:00", 360000),
        ("2-0", 172800),
        ("2-1", 176400),
        ("2-1:30", 178200),
        ("2-1:30:15", 178215),
    ],
)
def test_runtime_reads_like_slurm(text, seconds):
    assert parse_runtime(text) == seconds
    assert parse_runtime(format_runtime(seconds)) == seconds


# ---------------------------------------------------------------------------------------------
# Bad values: each message names the field and says what is allowed


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({"partition": "nope"}, "partition", "partition: unknown partition 'nope'; one of:"),
        ({"nprocs": "9"}, "nprocs", "nprocs: at most 8 CPUs on cpu"),
        ({"nprocs": 9}, "nprocs", "nprocs: at most 8 CPUs on cpu"),
        ({"nprocs": "0"}, "nprocs", "nprocs: at least 1 CPU (up to 8 on cpu)"),
        ({"nprocs": "-2"}, "nprocs", "nprocs: at least 1 CPU"),
        ({"nprocs": "1.5"}, "nprocs", "nprocs: expected a whole number, got '1.5'"),
        ({"nprocs": 1.0}, "nprocs", "nprocs: expected a whole number, got float"),
        ({"nprocs": True}, "nprocs", "nprocs: expected a whole number, got bool"),
        ({"nprocs": "9" * 40}, "nprocs", "nprocs: expected a whole number"),
        ({"nprocs": ["1", "2"]}, "nprocs", "nprocs: expected one value, got 2"),
        ({"ngpus": "1"}, "ngpus", "ngpus: cpu has no GPUs; use 0"),
        ({"partition": "gpu", "ngpus": "3"}, "ngpus", "ngpus: at most 2 GPUs on gpu"),
        ({"ngpus": "-1"}, "ngpus", "ngpus: cannot be negative"),
        ({"memory": "8001M"}, "memory", "memory: at most 8000M on cpu"),
        ({"memory": "8G"}, "memory", "memory: at most 8000M on cpu"),
        ({"memory": "1T"}, "memory", "memory: at most 8000M on cpu"),
        ({"memory": "1.5G"}, "memory", "memory: expected a Slurm size such as 512M or 16G"),
        ({"memory": "-1"}, "memory", "memory: expected a Slurm size"),
        ({"memory": "lots"}, "memory", "memory: expected a Slurm size"),
        # regression: KELVIN SIGN matched [K] case-insensitively, then crashed the unit lookup
        ({"memory": "1\u212a"}, "memory", "memory: expected a Slurm size"),
        ({"memory": "\u0663G"}, "memory", "memory: expected a Slurm size"),  # Arabic-Indic 3
        ({"nprocs": "\u0663"}, "nprocs", "nprocs: expected a whole number"),
        ({"runtime": "\u0661:00:00"}, "runtime", "runtime: expected hh:mm:ss"),
        ({"runtime": "1-00:00:01"}, "runtime", "runtime: at most 1-00:00:00 on cpu"),
        ({"partition": "gpu", "runtime": "721"}, "runtime", "runtime: at most 12:00:00 on gpu"),
        ({"partition": "debug", "runtime": "2:00:00"}, "runtime", "at most 01:00:00 on debug"),
        ({"runtime": "0"}, "runtime", "runtime: must be longer than 0"),
        ({"runtime": "2h"}, "runtime", "runtime: expected hh:mm:ss, d-hh:mm:ss or minutes"),
        ({"runtime": "UNLIMITED"}, "runtime", "runtime: expected hh:mm:ss"),
        ({"runtime": "1:2:3:4"}, "runtime", "runtime: expected hh:mm:ss"),
        ({"reservation": "a b"}, "reservation", "reservation: not a Slurm reservation name"),
        ({"reservation": "-x"}, "reservation", "reservation: not a Slurm reservation name"),
        ({"output": "maybe"}, "output", "output: expected true or false, got 'maybe'"),
        ({"output": "2"}, "output", "output: expected true or false"),
        ({"default_url": "lab"}, "default_url", "default_url: expected a path on your server"),
        ({"default_url": "//evil.example"}, "default_url", "default_url: expected a path"),
        ({"default_url": "http://evil.example/"}, "default_url", "default_url: expected a path"),
        ({"default_url": "/\\evil.example"}, "default_url", "default_url: expected a path"),
        ({"default_url": "javascript:alert(1)"}, "default_url", "default_url: expected a path"),
        ({"default_url": "/lab tree"}, "default_url", "default_url: expected a path"),
        ({"default_url": "/lab/../../hub/admin"}, "default_url", "must not contain '..'"),
        ({"root_dir": "work"}, "root_dir", "root_dir: expected an absolute path or one starting"),
        ({"root_dir": "~bob/work"}, "root_dir", "root_dir: expected an absolute path"),
        ({"root_dir": "$HOME/work"}, "root_dir", "root_dir: expected an absolute path"),
        ({"root_dir": "/data/$USER"}, "root_dir", "root_dir: letters, digits, spaces"),
        ({"root_dir": "~/../other"}, "root_dir", "root_dir: must not contain '..' segments"),
        ({"root_dir": "/a/~/b"}, "root_dir", "root_dir: letters, digits, spaces"),
        ({"environment_id": "gone"}, "environment_id", "environment_id: cpu has no environment"),
        ({"environment_path": "opt/bin"}, "environment_path", "expected an absolute path"),
        ({"environment_path": "/opt/my env/bin"}, "environment_path", "no whitespace, quotes"),
        ({"environment_path": "/opt/../bin"}, "environment_path", "must not contain '..'"),
        ({"environment_modules": "-f python"}, "environment_modules", "'-f' is not a module"),
        ({"environment_modules": "py;id"}, "environment_modules", "is not a module name"),
        ({"colour": "blue"}, "colour", "colour: unknown option; known: partition, nprocs"),
    ],
)
def test_bad_value_is_rejected_with_a_message_naming_the_field(raw, field, message):
    errors = errors_of({"partition": "cpu", **raw})
    assert list(errors) == [field]
    assert errors[field].startswith(f"{field}: ")
    assert message in errors[field]


def test_every_bad_field_is_reported_at_once():
    errors = errors_of({"partition": "cpu", "nprocs": "99", "memory": "x", "output": "?"})
    assert set(errors) == {"nprocs", "memory", "output"}
    with pytest.raises(UserOptionsError) as caught:
        parse({"partition": "cpu", "nprocs": "99", "memory": "x"})
    assert str(caught.value).splitlines() == list(caught.value.errors.values())


def test_unknown_partition_still_reports_syntax_errors_of_other_fields():
    errors = errors_of({"partition": "gone", "nprocs": "many", "runtime": "soon"})
    assert set(errors) == {"partition", "nprocs", "runtime"}


# ---------------------------------------------------------------------------------------------
# Extra sbatch options: the deny list, abbreviations, short aliases, the allow list

DENIED = [
    "--partition=debug",
    "-p debug",
    "-pdebug",
    "--parti=debug",
    "--p=debug",
    "--uid=0",
    "--gid 0",
    "--chdir=/",
    "-D /",
    "--export=ALL",
    "--exp=ALL",
    "--export-file=/tmp/env",
    "--get-user-env",
    "--wrap=id",
    "--output=/tmp/x",
    "-o /tmp/x",
    "--error=/tmp/x",
    "-e /tmp/x",
    "--input=/etc/passwd",
    "--cpus-per-task=99",
    "-c 99",
    "--cpus=99",
    "--gres=gpu:9",
    "--gpus=2",
    "-G 2",
    "--gpus-per-node=2",
    "--time=99:00:00",
    "-t 9999",
    "--ti=1",
    "--mem=1T",
    "--me=1T",
    "--mem-per-cpu=1G",
    "--mem-per-gpu=1G",
    "--reservation=other",
    "--nodes=2",
    "-N 2",
    "--ntasks=2",
    "-n 2",
    "--ntasks-per-node=2",
    "--nodelist=c1,c2",
    "-w c1",
    "--array=1-10",
    "-a 1-3",
    "--job-name=x",
    "-J x",
    "--clusters=other",
    "-M other",
    "--wait",
    "-W",
    "--test-only",
    "--parsable",
]


@pytest.mark.parametrize("text", DENIED)
def test_denied_sbatch_option(text):
    errors = errors_of({"partition": "cpu", "options": f"--comment=ok {text}"})
    assert list(errors) == ["options"]
    assert "is not allowed in extra options" in errors["options"]


def test_abbreviation_names_the_option_it_stands_for():
    errors = errors_of({"partition": "cpu", "options": "--parti=debug"})
    assert "--parti (an abbreviation of --partition)" in errors["options"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", "'hello' is not an option (expected --name=value)"),
        ("--comment=ok stray", "'stray' is not an option"),
        ("--", "is not a valid option name"),
        ("--Partition=x", "--Partition is not a valid option name"),
        ("-Z", "unknown short option -Z"),
        ("-A", "-A (--account) needs a value"),
        ('--comment="unbalanced', "cannot split into words"),
        ("--comment=a\nb", "control characters"),
        ("--comment=a\x00b", "control characters"),
        ("--comment=a\rb", "control characters"),
        ("--comment=" + "x" * 5000, "at most 4096 characters"),
    ],
)
def test_malformed_sbatch_options(text, message):
    errors = errors_of({"partition": "cpu", "options": text})
    assert message in errors["options"]


def test_strict_site_allow_list():
    policy = OptionsPolicy(allowed_sbatch_options=frozenset({"--comment", "--mail-type"}))
    assert parse({"partition": "cpu", "options": "--comment=x"}, policy).options == ["--comment=x"]
    errors = errors_of({"partition": "cpu", "options": "--contiguous"}, policy)
    assert errors["options"] == (
        "options: --contiguous is not allowed on this hub (allowed: --comment, --mail-type)"
    )
    # the allow list names options, whatever spelling sbatch would take for them
    assert parse({"partition": "cpu", "options": "--mail-t=END"}, policy).options == [
        "--mail-type=END"
    ]
    # the deny list still applies on top of an allow list
    strict_but_odd = OptionsPolicy(allowed_sbatch_options=frozenset({"--partition"}))
    assert (
        "not allowed in extra options"
        in errors_of({"partition": "cpu", "options": "--partition=gpu"}, strict_but_odd)["options"]
    )


def test_admin_can_extend_the_deny_list():
    policy = OptionsPolicy(denied_sbatch_options=frozenset({"--account", "-q"}))
    assert "--account" in errors_of({"partition": "cpu", "options": "-A x"}, policy)["options"]
    assert "--qos" in errors_of({"partition": "cpu", "options": "--qos=x"}, policy)["options"]
    # with a custom list, the default one no longer applies
    assert parse({"partition": "cpu", "options": "--comment=x"}, policy).options == ["--comment=x"]


# ---------------------------------------------------------------------------------------------
# Environments


def test_custom_environment_wins_over_environment_id():
    options = parse(
        {
            "partition": "cpu",
            "environment_id": "mods",
            "environment_path": "/home/me/venv/bin",
            "environment_modules": "  cuda/12.2   python/3.11 ",
        }
    )
    assert options.is_custom_environment
    assert options.environment_id == ""
    assert options.environment_path == "/home/me/venv/bin"
    assert options.environment_modules == "cuda/12.2 python/3.11"


def test_custom_environment_with_modules_only_or_an_image():
    assert parse({"partition": "cpu", "environment_modules": "jupyter"}).is_custom_environment
    image = parse({"partition": "cpu", "environment_path": "/home/me/jupyter.sif"})
    assert image.environment_path == "/home/me/jupyter.sif"


def test_custom_environment_disabled_by_policy():
    policy = OptionsPolicy(allow_custom_environments=False)
    errors = errors_of(
        {"partition": "cpu", "environment_path": "/x/bin", "environment_modules": "py"}, policy
    )
    assert errors == {
        "environment_path": "environment_path: custom environments are disabled on this hub",
        "environment_modules": "environment_modules: custom environments are disabled on this hub",
    }
    assert parse({"partition": "cpu", "environment_id": "mods"}, policy).environment_id == "mods"


def test_environment_id_must_belong_to_the_chosen_partition():
    errors = errors_of({"partition": "debug", "environment_id": "default"})
    assert errors == {
        "environment_id": "environment_id: debug has no environment 'default'; one of: only"
    }


# ---------------------------------------------------------------------------------------------
# Hostile characters: outside `options` (checked when rendered, in test_batch_script), every
# field refuses them.

PAYLOADS = ["\n", "\r", ";", "$(", "`", "'", '"', "\x00", " && id", "|id"]
BASE = {
    "partition": "gpu",
    "nprocs": "2",
    "ngpus": "1",
    "memory": "1G",
    "runtime": "1:00:00",
    "reservation": "resv",
    "output": "true",
    "default_url": "/lab",
    "root_dir": "~/work",
    "environment_id": "default",
    "environment_path": "/opt/custom/bin",
    "environment_modules": "python/3.11",
}


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
@pytest.mark.parametrize("field", sorted(BASE))
def test_hostile_characters_are_refused_in_every_plain_field(field, payload):
    for value in (BASE[field] + payload + "id", payload + BASE[field]):
        raw = {**BASE, field: value}
        if field == "environment_id":
            raw.pop("environment_path")
            raw.pop("environment_modules")
        errors = errors_of(raw)
        assert field in errors, (field, value, errors)
        assert errors[field].startswith(f"{field}: ")


@pytest.mark.parametrize("payload", ["\n", "\r", "\x00"], ids=repr)
def test_line_breaks_and_nul_are_refused_in_options(payload):
    errors = errors_of({"partition": "cpu", "options": f"--comment=a{payload}#SBATCH --uid=0"})
    assert "control characters" in errors["options"]


@pytest.mark.parametrize("payload", [";", "$(id)", "`id`", "'", '"', "#"], ids=repr)
def test_shell_characters_in_options_stay_inside_one_value(payload):
    text = "--comment=" + shlex.quote(f"a{payload}b")
    assert parse({"partition": "cpu", "options": text}).options == [f"--comment=a{payload}b"]


# ---------------------------------------------------------------------------------------------
# Three ways in, one model


def test_form_query_and_api_give_the_same_options():
    form = {
        "_xsrf": [b"token"],
        "partition": [b"gpu"],
        "nprocs": [b"4"],
        "ngpus": [b"1"],
        "memory": [b"2G"],
        "runtime": [b"2:00:00"],
        "options": [b"--comment='hi there'"],
        "output": [b"off", b"on"],  # hidden fallback, then the checked box
        "default_url": [b"/lab"],
        "environment_id": [b"mods"],
    }
    from_form = flatten_form(form)
    from_form.pop("_xsrf")
    query = normalise_query(
        {
            "opt-partition": "gpu",
            "opt-nprocs": "4",
            "opt-ngpus": "1",
            "opt-memory": "2G",
            "opt-runtime": "02:00:00",
            "opt-options": "--comment='hi there'",
            "opt-output": "true",
            "opt-default_url": "/lab",
            "opt-environment_id": "mods",
        }
    )
    api = {
        "partition": "gpu",
        "nprocs": 4,
        "ngpus": 1,
        "memory": "2048M",
        "runtime": "120",
        "options": "--comment='hi there'",
        "output": True,
        "default_url": "/lab",
        "environment_id": "mods",
        "reservation": "",
        "root_dir": "",
    }
    results = [parse(raw) for raw in (from_form, query, api)]
    assert results[0] == results[1]
    assert results[1].model_dump(exclude={"memory"}) == results[2].model_dump(exclude={"memory"})
    assert results[0].memory == "2G" and results[2].memory == "2048M"


def test_flatten_form_decodes_and_keeps_the_last_value():
    assert flatten_form({"a": [b"1", b"2"], "b": ["x"], "c": [], "d": "plain", "e": [b"\xff"]}) == {
        "a": "2",
        "b": "x",
        "c": "",
        "d": "plain",
        "e": "\ufffd",
    }


def test_query_accepts_bare_and_prefixed_names_prefixed_winning():
    assert normalise_query({"partition": "cpu", "nprocs": ["2"]}) == {
        "partition": "cpu",
        "nprocs": "2",
    }
    assert normalise_query({"nprocs": "2", "opt-nprocs": "4"}) == {"nprocs": "4"}


def test_none_from_saved_json_means_not_set():
    assert parse({"partition": "cpu", "memory": None, "nprocs": None}).nprocs == 1


# ---------------------------------------------------------------------------------------------
# Saving and pre-filling


ROUND_TRIPS = [
    {"partition": "cpu"},
    {
        "partition": "gpu",
        "nprocs": "8",
        "ngpus": "2",
        "memory": "0",
        "runtime": "12:00:00",
        "reservation": "r1",
        "options": "--comment='a b' --contiguous -A acct",
        "output": "on",
        "default_url": "/lab?reset",
        "root_dir": "~/my work",
        "environment_id": "image",
    },
    {"partition": "cpu", "environment_path": "/x/bin", "environment_modules": "a b"},
]


@pytest.mark.parametrize("raw", ROUND_TRIPS)
def test_saved_options_round_trip(raw):
    options = parse(raw)
    saved = options.to_saved()
    assert set(saved) == set(FIELD_NAMES)
    assert all(isinstance(value, str) for value in saved.values())
    assert parse(saved) == options
    assert parse(saved).to_saved() == saved


def test_salvage_keeps_what_is_still_valid():
    saved = {
        "partition": "gpu",
        "nprocs": "64",  # the node shrank
        "runtime": "2:00:00",
        "options": "--partition=cpu",  # set through the REST API, denied
        "default_url": "/lab",
        "unknown_key": "x",
    }
    assert salvage_saved_options(saved, LIMITS) == {
        **parse({"partition": "gpu", "runtime": "2:00:00", "default_url": "/lab"}).to_saved()
    }


def test_salvage_drops_everything_when_the_partition_is_gone():
    assert salvage_saved_options({"partition": "retired", "nprocs": "2"}, LIMITS) == {}
    assert salvage_saved_options(None, LIMITS) == {}
    assert salvage_saved_options({}, LIMITS) == {}
