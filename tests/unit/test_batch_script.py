"""The batch script: expected scripts for a table of option sets, and quoting that holds.

Expected scripts live in tests/fixtures/scripts/. After a deliberate template change, regenerate
them with ``MOSS_UPDATE_SCRIPTS=1 pytest tests/unit/test_batch_script.py`` and review the diff.
The launcher's source (jupyterhub_moss/launcher.py) shows as ``{launcher.py}`` in them; that the
script carries exactly that source is a test of its own.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from support.infra import missing
from support.sbatch_model import sbatch_arguments

from jupyterhub_moss.batch_script import (
    SCRIPT_CONTEXT_NAMES,
    ScriptSettings,
    ShellLiteral,
    build_script_context,
    default_template,
    launcher_source,
    render_batch_script,
    sbatch_quote,
    shell_words,
    unknown_script_names,
)
from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.limits import merge_partition_limits
from jupyterhub_moss.options import parse_user_options
from jupyterhub_moss.slurm.partitions import parse_sinfo

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED = FIXTURES / "scripts"
ENVIRONMENTS = {
    "default": {"description": "Default", "path": "/opt/jupyter/bin/"},
    "mods": {
        "modules": "python/3.11 jupyter",
        "add_to_path": False,
        "prologue": "source /etc/profile.d/modules.sh",
    },
    "image": {"path": "/images/jupyter.sif"},
}
LIMITS = merge_partition_limits(
    load_partitions(
        {
            "cpu": {"gpu": "", "jupyter_environments": ENVIRONMENTS},
            "gpu": {"jupyter_environments": ENVIRONMENTS},
        }
    ),
    parse_sinfo((FIXTURES / "slurm" / "sinfo_single_idle.txt").read_text()),
)
HUB_ENV = ("PATH", "LANG", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL", "JUPYTERHUB_SERVICE_URL")
SETTINGS = ScriptSettings(home_dir="/home/alice", export_vars=HUB_ENV)
ADMIN = ScriptSettings(
    home_dir="/home/alice/",
    export_vars=HUB_ENV,
    account="physics",
    qos="normal",
    options="--constraint=fast --mail-type FAIL",
    prologue='ulimit -c 0\necho "starting on $(hostname)"',
    epilogue="echo done",
    default_memory="1G",
    reservation="admin_resv",
    job_name="jupyterhub",
)

# name → (user options, admin settings)
CASES = {
    "cpu_minimal": ({"partition": "cpu"}, SETTINGS),
    "gpu_two": (
        {"partition": "gpu", "nprocs": "4", "ngpus": "2", "runtime": "2:00:00", "output": "on"},
        SETTINGS,
    ),
    "memory_reservation_options": (
        {
            "partition": "cpu",
            "memory": "2g",
            "reservation": "maint_1",
            "options": "--comment='nightly run' --contiguous -q high --mail-type=END",
            "default_url": "/lab",
            "root_dir": "~/my work",
        },
        SETTINGS,
    ),
    "environment_modules_prologue": (
        {"partition": "cpu", "environment_id": "mods", "runtime": "90"},
        ADMIN,
    ),
    "custom_environment": (
        {
            "partition": "cpu",
            "environment_path": "/home/alice/venv/bin",
            "environment_modules": "cuda/12.2",
        },
        SETTINGS,
    ),
    "container_image": (
        {"partition": "gpu", "ngpus": "1", "environment_id": "image", "root_dir": "/data"},
        SETTINGS,
    ),
    "admin_values_with_empty_user_values": (
        {"partition": "cpu", "memory": "", "reservation": "", "options": "", "ngpus": ""},
        ADMIN,
    ),
    "admin_values_with_user_values": (
        {"partition": "cpu", "memory": "4G", "reservation": "mine", "options": "--comment=x"},
        ADMIN,
    ),
    "no_srun_custom_container_command": (
        {"partition": "cpu", "environment_id": "image"},
        ScriptSettings(
            home_dir="/home/alice",
            export_vars=HUB_ENV,
            srun="",
            container_command="singularity exec --nv {image}",
            launcher_python="",  # server_launcher = "batchspawner"
            singleuser_command=(
                "/opt/bs/batchspawner-singleuser",
                "jupyterhub-singleuser",
                "--debug",
            ),
        ),
    ),
}


def render(raw: dict, settings: ScriptSettings = SETTINGS) -> str:
    options = parse_user_options(raw, LIMITS)
    context = build_script_context(options, LIMITS[options.partition], settings)
    return render_batch_script(default_template(), context)


LAUNCHER_PLACEHOLDER = "{launcher.py}"


def shown(script: str) -> str:
    """The script as the expected files hold it: the launcher's source as a placeholder."""
    return script.replace(launcher_source(), LAUNCHER_PLACEHOLDER)


@pytest.mark.parametrize("name", sorted(CASES))
def test_script_matches_the_expected_one(name):
    raw, settings = CASES[name]
    script = shown(render(raw, settings))
    expected = EXPECTED / f"{name}.sh"
    if os.environ.get("MOSS_UPDATE_SCRIPTS"):
        expected.parent.mkdir(parents=True, exist_ok=True)
        expected.write_text(script)
    assert script == expected.read_text()


def test_the_names_the_start_up_check_knows_are_the_contexts_own():
    options = parse_user_options({"partition": "cpu"}, LIMITS)
    context = build_script_context(options, LIMITS["cpu"], SETTINGS)
    assert set(context) == SCRIPT_CONTEXT_NAMES
    assert unknown_script_names(default_template()) == []


def test_every_expected_script_has_a_case():
    assert sorted(p.stem for p in EXPECTED.glob("*.sh")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_expected_script_is_valid_bash(name):
    bash = shutil.which("bash")
    assert bash, "bash is part of every supported system"
    result = subprocess.run([bash, "-n", str(EXPECTED / f"{name}.sh")], capture_output=True)
    assert result.returncode == 0, result.stderr


def test_default_script_shape():
    lines = render({"partition": "cpu"}).splitlines()
    assert lines[0] == "#!/bin/bash"
    assert "#SBATCH --get-user-env" in lines  # no "=L": Slurm 25.05 refuses it
    assert "#SBATCH --output=/dev/null" in lines
    assert "#SBATCH --chdir=/home/alice" in lines
    assert "#SBATCH --export=" + ",".join(HUB_ENV) in lines
    body = lines.index("set -euo pipefail")
    assert all(line.startswith("#SBATCH ") for line in lines[1 : body - 1])
    # --export=LIST would also narrow the srun step's environment; the script widens it first.
    assert lines.index("export SLURM_EXPORT_ENV=ALL") < lines.index(
        'srun python3 -I -S -c "$MOSS_LAUNCHER" jupyterhub-singleuser'
    )


def test_the_script_carries_the_launcher_verbatim_in_a_quoted_here_document():
    script = render({"partition": "cpu"})
    start = "MOSS_LAUNCHER=$(cat <<'MOSS_LAUNCHER_END'\n"
    assert script.count(start) == 1 and script.count(LAUNCHER_PLACEHOLDER) == 0
    carried = script.split(start, 1)[1].split("\nMOSS_LAUNCHER_END\n)\n", 1)[0]
    assert (
        carried
        == launcher_source()
        == (Path(__file__).resolve().parents[2] / "jupyterhub_moss" / "launcher.py")
        .read_text()
        .rstrip("\n")
    )
    # what bash hands python3 -c is that very text
    printed = subprocess.run(
        ["bash", "-c", script.split("srun ", 1)[0] + 'printf %s "$MOSS_LAUNCHER"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == launcher_source()


def test_without_the_launcher_the_command_runs_as_it_is():
    settings = ScriptSettings(
        home_dir="/home/alice",
        export_vars=HUB_ENV,
        launcher_python="",
        singleuser_command=("batchspawner-singleuser", "jupyterhub-singleuser"),
    )
    script = render({"partition": "cpu"}, settings)
    assert "MOSS_LAUNCHER" not in script
    assert "srun batchspawner-singleuser jupyterhub-singleuser" in script.splitlines()


def test_output_true_keeps_logs_in_home():
    assert (
        "#SBATCH --output=/home/alice/slurm-%j.out"
        in render({"partition": "cpu", "output": "true"}).splitlines()
    )


def test_empty_user_values_keep_the_admins():
    lines = render(*CASES["admin_values_with_empty_user_values"]).splitlines()
    for line in (
        "#SBATCH --account=physics",
        "#SBATCH --qos=normal",
        "#SBATCH --mem=1G",
        "#SBATCH --reservation=admin_resv",
        "#SBATCH --constraint=fast",
        "#SBATCH --mail-type=FAIL",
    ):
        assert line in lines


def test_user_values_replace_admin_defaults_but_the_admins_lines_come_last():
    lines = render(*CASES["admin_values_with_user_values"]).splitlines()
    assert "#SBATCH --mem=4G" in lines and "#SBATCH --mem=1G" not in lines
    # req_reservation is the admin's, not a default (validation refuses the user's; see
    # test_options.py); should one slip through, the script still says the admin's
    assert "#SBATCH --reservation=admin_resv" in lines and "#SBATCH --reservation=mine" not in lines
    assert "#SBATCH --account=physics" in lines
    # sbatch keeps an option's last value: the user's lines first, the hub's, then the admin's
    order = [
        "#SBATCH --comment=x",
        "#SBATCH --partition=cpu",
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --account=physics",
        "#SBATCH --qos=normal",
        "#SBATCH --constraint=fast",
        "#SBATCH --mail-type=FAIL",
    ]
    assert [lines.index(line) for line in order] == sorted(lines.index(line) for line in order)


def test_a_bare_option_that_needs_a_value_is_never_rendered():
    # sbatch would read the next #SBATCH line's option as its value
    with pytest.raises(ValueError, match="needs a value"):
        render_batch_script("#SBATCH {{ o|sbatch_option }}", {"o": "--comment"})
    assert render_batch_script("#SBATCH {{ o|sbatch_option }}", {"o": "--contiguous"}) == (
        "#SBATCH --contiguous"
    )


def test_default_url_and_root_dir_are_per_spawn_environment():
    script = render({"partition": "cpu", "default_url": "/lab", "root_dir": "~/my work"})
    assert "export JUPYTERHUB_DEFAULT_URL=/lab\n" in script
    # jupyterhub-singleuser expands "~" itself, so the quoted form is right
    assert "export JUPYTERHUB_ROOT_DIR='~/my work'\n" in script
    assert "JUPYTERHUB_DEFAULT_URL" not in render({"partition": "cpu"})


# ---------------------------------------------------------------------------------------------
# The renderer's quoting


def test_every_interpolated_value_is_shell_quoted_by_default():
    template = "echo {{ value }}\n"
    assert render_batch_script(template, {"value": "$(id); `id` 'x'"}) == (
        "echo '$(id); `id` '\"'\"'x'\"'\"''\n"
    )
    assert render_batch_script(template, {"value": ""}) == "echo ''\n"
    assert render_batch_script(template, {"value": None}) == "echo ''\n"
    assert render_batch_script(template, {"value": 4}) == "echo 4\n"
    # concatenation inside the template is still quoted as one value
    assert render_batch_script("echo {{ a ~ b }}", {"a": "x ", "b": ";y"}) == "echo 'x ;y'"


def test_literal_and_words():
    assert render_batch_script("{{ v }}", {"v": ShellLiteral("a && b")}) == "a && b"
    assert render_batch_script("{{ v|literal }}", {"v": "a && b"}) == "a && b"
    assert render_batch_script("run {{ v|words }}", {"v": ["a b", "c"]}) == "run 'a b' c"
    assert shell_words(["--x=1", "$HOME"]) == "--x=1 '$HOME'"


def test_missing_context_value_is_an_error_not_an_empty_string():
    with pytest.raises(Exception, match="undefined"):
        render_batch_script("{{ nope }}", {})


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("gpu", "gpu"),
        ("/home/alice/slurm-%j.out", "/home/alice/slurm-%j.out"),
        ("PATH,LANG", "PATH,LANG"),
        ("two words", '"two words"'),
        ("a#b", '"a#b"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("it's", '"it\'s"'),
        ("", '""'),
    ],
)
def test_sbatch_quote(value, quoted):
    assert sbatch_quote(value) == quoted
    assert sbatch_arguments(f"#SBATCH --comment={quoted}") == [f"--comment={value}"]


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x00b"], ids=repr)
def test_sbatch_quote_refuses_line_breaks(value):
    with pytest.raises(ValueError, match="line break"):
        sbatch_quote(value)


def test_bad_admin_values_fail_loudly():
    options = parse_user_options({"partition": "cpu"}, LIMITS)
    with pytest.raises(ValueError, match="environment variable name"):
        build_script_context(
            options, LIMITS["cpu"], ScriptSettings(home_dir="/h", export_vars=("A;B",))
        )
    with pytest.raises(ValueError, match="not an option"):
        build_script_context(options, LIMITS["cpu"], ScriptSettings(home_dir="/h", options="x"))


def test_no_export_list_means_slurms_default():
    options = parse_user_options({"partition": "cpu"}, LIMITS)
    context = build_script_context(options, LIMITS["cpu"], ScriptSettings(home_dir="/h"))
    assert context["export"] == "ALL"


# ---------------------------------------------------------------------------------------------
# Hostile values that validation accepts reach the script as one quoted value

HOSTILE = [";", "$(id)", "`id`", "'", '"', "#", "\\", " && id", "|id", "{}", "%j"]


@pytest.mark.parametrize("payload", HOSTILE, ids=repr)
def test_hostile_option_value_is_one_sbatch_argument(payload):
    value = f"a{payload}b"
    script = render({"partition": "cpu", "options": "--comment=" + shlex.quote(value)})
    (line,) = [ln for ln in script.splitlines() if ln.startswith("#SBATCH --comment")]
    assert sbatch_arguments(line) == [f"--comment={value}"]


@pytest.mark.parametrize("payload", [" ", "  x"], ids=repr)
def test_root_dir_with_spaces_is_one_shell_word(payload):
    root = f"~/a{payload}b"
    script = render({"partition": "cpu", "root_dir": root})
    (line,) = [ln for ln in script.splitlines() if "JUPYTERHUB_ROOT_DIR" in ln]
    assert shlex.split(line) == ["export", f"JUPYTERHUB_ROOT_DIR={root}"]


# ---------------------------------------------------------------------------------------------
# Real sbatch reads our #SBATCH lines as we mean them (client-side only: no controller needed)


@pytest.fixture(scope="module")
def sbatch_options_of(tmp_path_factory):
    """Run sbatch's own option parsing on a script and return its "defined options" list.

    A throwaway slurm.conf points at a port nobody listens on; sbatch prints its options
    (``-v``) before trying to reach the controller, and is stopped as soon as it has.
    """
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        missing("sbatch is not installed")
    folder = tmp_path_factory.mktemp("sbatch")
    conf = folder / "slurm.conf"
    conf.write_text(
        "ClusterName=quotecheck\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=1\n"
        "AuthType=auth/none\nNodeName=localhost CPUs=1\nPartitionName=p Nodes=localhost\n"
    )

    def read(script: str) -> dict[str, str]:
        path = folder / "job.sh"
        path.write_text(script)
        env = {**os.environ, "SLURM_CONF": str(conf)}
        with subprocess.Popen(
            [sbatch, "-v", "--test-only", str(path)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=env,
            cwd=folder,
            text=True,
        ) as proc:
            defined, lines = {}, []
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line)
                match = re.match(r"^sbatch: (\S+)\s+: (.*)$", line.rstrip("\n"))
                if match:
                    defined[match[1]] = match[2]
                if "end of defined options" in line or "fatal" in line:
                    break
            proc.kill()
        assert defined, "".join(lines)
        return defined

    return read


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_sbatch_reads_each_line_as_meant(name, sbatch_options_of):
    raw, settings = CASES[name]
    options = parse_user_options(raw, LIMITS)
    context = build_script_context(options, LIMITS[options.partition], settings)
    defined = sbatch_options_of(render_batch_script(default_template(), context))
    assert defined["partition"] == context["partition"]
    assert defined["cpus-per-task"] == str(context["nprocs"])
    assert defined["time"] == context["runtime"]
    assert defined["chdir"] == context["home_dir"]
    assert defined["export"] == context["export"]
    assert defined["output"] == context["output_path"]
    assert defined["job-name"] == context["job_name"]
    assert defined.get("mem", "") == context["memory"]
    assert defined.get("gres", "") == ("gres:" + context["gres"] if context["gres"] else "")
    assert defined.get("reservation", "") == context["reservation"]
    # the admin's --account/--qos come after the user's options, and sbatch keeps the last value
    assert defined.get("qos", "") == (context["qos"] or _last("qos", context))
    assert defined.get("account", "") == (context["account"] or _last("account", context))


@pytest.mark.parametrize("payload", HOSTILE, ids=repr)
def test_real_sbatch_reads_hostile_option_values_whole(payload, sbatch_options_of):
    value = f"a{payload}b"
    defined = sbatch_options_of(
        render({"partition": "cpu", "options": "--comment=" + shlex.quote(value)})
    )
    assert defined["comment"] == value


def _last(name: str, context: dict) -> str:
    """The value a later extra option gives ``name`` (sbatch: the last one wins)."""
    found = ""
    for item in context["sbatch_options"]:
        if item.startswith(f"--{name}="):
            found = item.split("=", 1)[1]
    return found
