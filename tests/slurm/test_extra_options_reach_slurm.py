"""Extra sbatch options that get through validation never buy more than the form allows.

For each option users may type (every allowed entry of Slurm's option table, and a few
combinations), the request goes through the hub's own path, ``parse_user_options`` →
``build_script_context`` → the default template, and is submitted for real as alice with
``sbatch --parsable --hold`` (the job waits in the queue; nothing runs). The job Slurm records
(``scontrol show job -o``) must ask for no more CPUs, tasks, nodes, memory, GPUs or time than the
form allowed, in the form's partition, with the admin's account and QOS. Slurm refusing the
job outright (a feature or licence this cluster lacks) is also fine: nothing more was granted.
Every job is cancelled by its id.

The denied options never get here: tests/unit/test_sbatch_option_table.py shows each one is
refused, under every spelling, before anything reaches Slurm.
"""

from __future__ import annotations

import pwd
import re
import subprocess
from collections.abc import Iterator

import pytest
from support.spawning import job_fields

from jupyterhub_moss.batch_script import (
    ScriptSettings,
    build_script_context,
    default_template,
    render_batch_script,
)
from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.limits import PartitionLimits, merge_partition_limits
from jupyterhub_moss.options import (
    OptionsPolicy,
    UserOptions,
    UserOptionsError,
    parse_user_options,
)
from jupyterhub_moss.slurm.partitions import SINFO_ARGS, parse_sinfo
from jupyterhub_moss.slurm_option_table import SBATCH_OPTIONS, SLURM_VERSIONS, options_matching

USER = "alice"
#: What the form asks for; every job must stay within it.
FORM = {"partition": "gpu", "nprocs": "2", "ngpus": "1", "memory": "500M", "runtime": "0:20:00"}
FORM_MEMORY_MB, FORM_SECONDS = 500, 20 * 60

#: A value for each allowed option that means something on a one-node 22.05 cluster.
SAMPLE_VALUES: dict[str, str] = {
    "account": "--account=chemistry",  # alice's second account on the accounting site
    "batch": "--batch=fast",
    "begin": "--begin=now+1hour",
    "comment": "--comment=extra-options",
    "constraint": "--constraint=fast",
    "contiguous": "--contiguous",
    "deadline": "--deadline=now+7days",
    "dependency": "--dependency=singleton",
    "exclude": "--exclude=nosuchnode",
    "extra": "--extra=rack=1",
    "kill-on-invalid-dep": "--kill-on-invalid-dep=yes",
    "licenses": "--licenses=matlab:1",
    "mail-type": "--mail-type=END",
    "no-kill": "--no-kill",
    "no-requeue": "--no-requeue",
    "oom-kill-step": "--oom-kill-step=1",
    "prefer": "--prefer=fast",
    "qos": "--qos=normal",
}
#: Several at once, and the spellings sbatch also reads (prefixes, short forms).
COMBINATIONS = [
    "--comment=combo -A chemistry --begin=now --mail-type=END,FAIL --no-requeue",
    "--comm=combo --dead=now+7days --depend=singleton -k --exclude=nosuchnode",
    "-b now+1hour -d singleton -x nosuchnode -q normal",
]


def slurm_release(env: dict[str, str]) -> str:
    out = subprocess.run(
        ["sbatch", "--version"], env=env, capture_output=True, text=True, timeout=30, check=True
    ).stdout
    found = re.search(r"(\d+)\.(\d+)\.\d+", out)
    assert found, out
    return f"{found[1]}.{int(found[2]):02d}"


def exists_in(name: str, release: str) -> bool:
    option = next(o for o in SBATCH_OPTIONS if o.name == name)
    order = list(SLURM_VERSIONS)
    if release not in order:
        return True  # a newer release: assume it kept the option
    since, until = order.index(option.since), order.index(option.until or SLURM_VERSIONS[-1])
    return since <= order.index(release) <= until and release not in option.missing_in


@pytest.fixture(scope="module")
def limits(slurm_cluster) -> dict[str, PartitionLimits]:
    sinfo = subprocess.run(
        ["sinfo", *SINFO_ARGS],
        env=slurm_cluster.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    environments = {"default": {"path": f"{slurm_cluster.jobenv}/bin"}}
    config = {
        name: {"jupyter_environments": environments, **({} if name == "gpu" else {"gpu": ""})}
        for name in ("cpu", "gpu", "debug")
    }
    return merge_partition_limits(load_partitions(config), parse_sinfo(sinfo))


@pytest.fixture(scope="module")
def release(slurm_cluster) -> str:
    return slurm_release(slurm_cluster.env)


@pytest.fixture
def submit(slurm_cluster) -> Iterator:
    """``submit(script)`` → ``(job id or None, sbatch's stderr)``; every job is cancelled."""
    submitted: list[str] = []

    def run(script: str) -> tuple[str | None, str]:
        done = subprocess.run(
            ["sudo", "-E", "-u", USER, "sbatch", "--parsable", "--hold"],
            input=script,
            env=slurm_cluster.env,
            cwd="/tmp",
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            return None, done.stderr
        job_id = done.stdout.strip().split(";")[0]
        submitted.append(job_id)
        return job_id, done.stderr

    yield run
    for job_id in submitted:
        subprocess.run(["scancel", job_id], env=slurm_cluster.env, timeout=30, check=False)


def script_for(
    options: UserOptions, limits: dict[str, PartitionLimits], settings: ScriptSettings
) -> str:
    context = build_script_context(options, limits[options.partition], settings)
    return render_batch_script(default_template(), context)


def settings(**admin: str) -> ScriptSettings:
    return ScriptSettings(
        home_dir=pwd.getpwnam(USER).pw_dir, job_name="moss-extra-options", **admin
    )


def tres(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


def megabytes(text: str) -> float:
    number, unit = float(text[:-1]), text[-1].upper()
    return number * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[unit]


def seconds(text: str) -> int:
    days, _, clock = text.rpartition("-")
    h, m, s = (int(part) for part in clock.split(":"))
    return (int(days) if days else 0) * 86400 + h * 3600 + m * 60 + s


def assert_within_the_form(job: dict[str, str], account: str = "", qos: str = "") -> None:
    asked = tres(job["TRES"]) if job.get("TRES") not in (None, "", "(null)") else {}
    asked = asked or tres(job.get("ReqTRES", ""))
    assert int(job["NumCPUs"]) <= int(FORM["nprocs"]), job
    assert job["NumNodes"] in ("1", "1-1"), job
    assert job["NumTasks"] in ("1", "N/A"), job
    assert int(job.get("CPUs/Task", "1")) <= int(FORM["nprocs"]), job
    assert megabytes(job["MinMemoryNode"]) <= FORM_MEMORY_MB, job
    assert megabytes(asked["mem"]) <= FORM_MEMORY_MB, job
    assert int(asked.get("gres/gpu", "0")) <= int(FORM["ngpus"]), job
    assert job.get("TresPerNode", "") in ("gres:gpu:fake:1", "gres:gpu:1"), job
    assert seconds(job["TimeLimit"]) <= FORM_SECONDS, job
    assert job["Partition"] == FORM["partition"], job
    assert job.get("Reservation", "(null)") == "(null)", job
    if account:
        assert job["Account"] == account, job
    if qos:
        # without slurmdbd (dev/cluster) Slurm records no QOS at all, never the user's
        assert job["QOS"] in (qos, "(null)"), job


ALLOWED = sorted(o.name for o in SBATCH_OPTIONS if not o.denied)


def test_every_allowed_option_has_a_sample_value():
    assert sorted(SAMPLE_VALUES) == ALLOWED


@pytest.mark.parametrize("name", ALLOWED)
def test_an_allowed_option_asks_slurm_for_no_more_than_the_form(
    slurm_cluster, limits, release, submit, name
):
    try:
        options = parse_user_options({**FORM, "options": SAMPLE_VALUES[name]}, limits)
    except UserOptionsError as refused:
        # Some supported sbatch lacks the option and reads its name as an abbreviation of a
        # denied one (22.05 takes --extra for --extra-node-info): refused before Slurm.
        assert any(o.denied for o in options_matching(name)), refused
        if not exists_in(name, release):
            # and this cluster's sbatch is such a one: the raw line would set another option
            raw = f"#!/bin/sh\n#SBATCH --partition=debug\n#SBATCH {SAMPLE_VALUES[name]}\ntrue\n"
            job_id, stderr = submit(raw)
            assert job_id is None and "-B" in stderr, stderr
        return
    job_id, stderr = submit(script_for(options, limits, settings()))
    if not exists_in(name, release):
        # newer than this cluster's sbatch, which refuses it itself: nothing is queued
        assert job_id is None and f"unrecognized option '--{name}" in stderr, stderr
        return
    if job_id is None:
        # Slurm refused the job (a feature or licence this cluster does not have): no more
        # than the form, and nothing queued
        assert "error" in stderr.lower(), stderr
        return
    assert_within_the_form(job_fields(slurm_cluster.env, job_id))


@pytest.mark.parametrize("text", COMBINATIONS)
def test_allowed_options_together_ask_for_no_more_than_the_form(
    slurm_cluster, limits, submit, text
):
    options = parse_user_options({**FORM, "options": text}, limits)
    job_id, stderr = submit(script_for(options, limits, settings()))
    assert job_id is not None, stderr
    assert_within_the_form(job_fields(slurm_cluster.env, job_id))


def test_the_admins_account_and_qos_win_in_the_job_slurm_records(slurm_cluster, limits, submit):
    # real accounts of alice's (with slurmdbd, Slurm refuses one she does not have)
    admin = settings(account="chemistry", qos="normal", options="--comment=admin-comment")
    policy = OptionsPolicy(
        locked_sbatch_options=OptionsPolicy.admin_locks(
            admin.options, account=admin.account, qos=admin.qos, reservation=""
        )
    )
    options = parse_user_options({**FORM, "options": "--begin=now+1hour"}, limits, policy)
    job_id, stderr = submit(script_for(options, limits, admin))
    assert job_id is not None, stderr
    job = job_fields(slurm_cluster.env, job_id)
    assert_within_the_form(job, account="chemistry", qos="normal")
    assert job["Comment"] == "admin-comment"


def test_the_admins_lines_win_even_if_a_user_line_slipped_through(slurm_cluster, limits, submit):
    """Validation refuses these; the script's order is the second wall (sbatch keeps the last
    value of an option), shown here with options built past validation."""
    admin = settings(account="chemistry", options="--comment=admin-comment")
    options = parse_user_options(FORM, limits).model_copy(
        update={"options": ["--account=physics", "--comment=user-comment", "--mem=4G"]}
    )
    job_id, stderr = submit(script_for(options, limits, admin))
    assert job_id is not None, stderr
    job = job_fields(slurm_cluster.env, job_id)
    assert_within_the_form(job, account="chemistry")
    assert job["Comment"] == "admin-comment"


def test_what_the_old_deny_list_let_through_would_have_exceeded_the_form(
    slurm_cluster, limits, submit
):
    """Why the table matters: the same path with a user line sbatch reads as --ntasks-per-node
    (``--tasks``, an abbreviation of the deprecated ``--tasks-per-node``) gets more CPUs than the
    form's. Today's validation refuses it; it is built past validation here."""
    options = parse_user_options(FORM, limits).model_copy(update={"options": ["--tasks=4"]})
    job_id, stderr = submit(script_for(options, limits, settings()))
    assert job_id is not None, stderr
    job = job_fields(slurm_cluster.env, job_id)
    assert int(job["NumCPUs"]) > int(FORM["nprocs"]), job
