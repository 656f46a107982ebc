"""The start estimate asks Slurm about the job the batch script would submit, argument for argument.

``sbatch --test-only`` gets the arguments on its command line, the real submission as ``#SBATCH``
lines; both come from :func:`jupyterhub_moss.batch_script.job_sbatch_arguments`. Here the
script's lines are parsed back (as sbatch reads them) and compared with the estimate's list.
"""

from __future__ import annotations

import asyncio
import types
from datetime import datetime, timezone
from pathlib import Path

import pytest
from support.sbatch_model import sbatch_arguments

from jupyterhub_moss.batch_script import (
    ScriptSettings,
    build_script_context,
    default_template,
    render_batch_script,
)
from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.context import SpawnRequest
from jupyterhub_moss.form import estimate
from jupyterhub_moss.form.estimate import estimate_args, start_estimate
from jupyterhub_moss.limits import merge_partition_limits
from jupyterhub_moss.options import parse_user_options
from jupyterhub_moss.slurm.estimates import StartEstimator
from jupyterhub_moss.slurm.models import StartEstimate
from jupyterhub_moss.slurm.partitions import parse_sinfo
from jupyterhub_moss.slurm.view import ClusterSnapshot
from jupyterhub_moss.spawner import MOSlurmSpawner

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SINFO = parse_sinfo((FIXTURES / "slurm" / "sinfo_single_idle.txt").read_text())
ENVIRONMENTS = {"default": {"path": "/opt/jupyter/bin/"}}
PARTITIONS = {
    "cpu": {"gpu": "", "jupyter_environments": ENVIRONMENTS},
    "gpu": {"jupyter_environments": ENVIRONMENTS},
}
LIMITS = merge_partition_limits(load_partitions(PARTITIONS), SINFO)
HOME = "/home/alice"
# What the script sets for itself and the estimate leaves out (or sets its own way).
NOT_ESTIMATED = ("--job-name", "--export", "--get-user-env", "--chdir", "--output")

# name → the admin's req_* values, as ScriptSettings fields
ADMIN = {
    "none": {},
    "account": {"account": "physics"},
    "qos": {"qos": "normal"},
    "options": {"options": "--constraint=fast --mail-type FAIL"},
    "memory": {"default_memory": "1G"},
    "gres": {"default_gres": "tmpdisk:10"},
    "reservation": {"reservation": "admin_resv"},
    "account_qos": {"account": "physics", "qos": "long"},
    "all": {
        "account": "physics",
        "qos": "normal",
        "options": "--constraint=fast --comment='admin says'",
        "default_memory": "1G",
        "default_gres": "tmpdisk:10",
        "reservation": "admin_resv",
    },
}
# name → the user's form values
USER = {
    "minimal": {"partition": "cpu"},
    "gpu": {"partition": "gpu", "nprocs": "4", "ngpus": "2", "runtime": "2:00:00"},
    "memory_reservation": {"partition": "cpu", "memory": "4G", "reservation": "mine"},
    "extra_options": {"partition": "cpu", "options": "--comment='a b' --contiguous"},
    "saved_output": {"partition": "gpu", "ngpus": "1", "output": "on", "memory": "2g"},
}


def script_arguments(script: str) -> list[str]:
    return [
        argument
        for line in script.splitlines()
        if line.startswith("#SBATCH ")
        for argument in sbatch_arguments(line)
    ]


def job_part(arguments: list[str]) -> list[str]:
    return [a for a in arguments if not a.startswith(NOT_ESTIMATED)]


async def spawn_request_of(spawner: MOSlurmSpawner, values: dict[str, str]) -> SpawnRequest:
    """The request start() would get for ``values``, checked by the spawner's own validator."""
    options = await spawner.validate_options(values)
    return SpawnRequest(options, (await spawner.partition_limits())[options.partition])


@pytest.mark.parametrize("user", sorted(USER))
@pytest.mark.parametrize("admin", sorted(ADMIN))
def test_estimate_arguments_are_the_scripts_sbatch_lines(admin, user):
    settings = ScriptSettings(home_dir=HOME, **ADMIN[admin])
    options = parse_user_options(USER[user], LIMITS)
    limits = LIMITS[options.partition]
    script = render_batch_script(
        default_template(), build_script_context(options, limits, settings)
    )
    estimate = estimate_args(options, limits, settings, home=HOME)

    assert job_part(estimate) == job_part(script_arguments(script))
    assert [a for a in estimate if a.startswith(NOT_ESTIMATED)] == [
        f"--chdir={HOME}",
        "--output=/dev/null",
    ]


def test_admin_values_reach_the_estimate():
    settings = ScriptSettings(home_dir=HOME, **ADMIN["all"])
    options = parse_user_options({"partition": "cpu"}, LIMITS)
    estimate = estimate_args(options, LIMITS["cpu"], settings, home=HOME)
    assert {
        "--account=physics",
        "--qos=normal",
        "--constraint=fast",
        "--comment=admin says",
        "--mem=1G",
        "--gres=tmpdisk:10",
        "--reservation=admin_resv",
    } <= set(estimate)
    # sbatch keeps an option's last value: the admin's lines come after the user's
    assert estimate[-2:] == ["--constraint=fast", "--comment=admin says"]


def test_the_spawners_estimate_uses_its_req_traits(monkeypatch):
    """Through the form's own path: the spawner's req_* traits reach sbatch --test-only."""
    spawner = MOSlurmSpawner(
        partitions=PARTITIONS,
        user=types.SimpleNamespace(name="alice"),
        req_account="physics",
        req_qos="normal",
        req_options="--constraint=fast",
        req_memory="1G",
        req_reservation="admin_resv",
        req_homedir=HOME,
    )
    spawner.orm_spawner = types.SimpleNamespace(name="", user_options={}, server=None)
    snapshot = ClusterSnapshot(SINFO, (), datetime.now(timezone.utc))

    async def fixed_snapshot() -> ClusterSnapshot:
        return snapshot

    spawner.cluster_snapshot = fixed_snapshot
    asked: list[list[str]] = []

    async def query(username: str, args: list[str], script: str) -> StartEstimate:
        asked.append(args)
        return StartEstimate(datetime.now(timezone.utc), 1, "c1")

    monkeypatch.setattr(spawner, "start_estimator", lambda: StartEstimator(query=query))
    monkeypatch.setattr(estimate, "home_of", lambda _user: HOME)
    values = {"partition": "cpu", "nprocs": "2"}
    context = asyncio.run(spawner.form_context(with_estimates=True))
    asyncio.run(start_estimate(context, values, datetime.now(timezone.utc)))

    script = spawner.build_batch_script(asyncio.run(spawn_request_of(spawner, values)), {})
    assert len(asked) == 1
    assert job_part(asked[0]) == job_part(script_arguments(script))
    assert "--account=physics" in asked[0]
