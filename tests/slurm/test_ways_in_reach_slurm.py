"""Every documented spawn parameter, through each way in, reaches the job Slurm queues.

The hub submits for real, but with the admin option `--hold`, so the job waits in the queue
while the test reads it back with `scontrol show job` and `scontrol write batch_script`; then
the server is stopped through the REST API, which cancels the job.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator

import pytest
from support.cluster_hub import (
    CLUSTER_HUB_CONFIG,
    spawn_via_api,
    spawn_via_form,
    spawn_via_query,
)
from support.held_jobs import job_fields, scontrol, stop_and_wait, submitted_job
from support.hub import running_hub

RESERVATION = "moss-ways-in"

# Two sets, because a custom environment (path/modules) and environment_id exclude each other.
ADMIN_ENVIRONMENT = {
    "partition": "gpu",
    "nprocs": "2",
    "ngpus": "1",
    "memory": "600M",
    "runtime": "0:45:00",
    "reservation": RESERVATION,
    "options": "--comment=ways-in --mail-type=END",
    "output": "true",
    "default_url": "/lab",
    "root_dir": "~/work",
    "environment_id": "default",
}
CUSTOM_ENVIRONMENT = {
    "partition": "cpu",
    "nprocs": "3",
    "memory": "1G",
    "runtime": "90",
    "options": "--comment=custom",
    "output": "false",
    "default_url": "/tree",
    "root_dir": "/tmp",
    "environment_path": "/opt/moss-jobenv/bin",
    "environment_modules": "gcc/12 python/3.11",
}


@pytest.fixture(scope="module")
def reservation(slurm_cluster) -> Iterator[str]:
    scontrol(
        slurm_cluster.env,
        "create",
        "reservation",
        f"ReservationName={RESERVATION}",
        "Users=alice",
        "StartTime=now",
        "Duration=120",
        "Nodes=ALL",
        "Flags=IGNORE_JOBS",
    )
    try:
        yield RESERVATION
    finally:
        scontrol(slurm_cluster.env, "delete", f"ReservationName={RESERVATION}")


@pytest.fixture(scope="module")
def held_hub(slurm_cluster, hub_infra, reservation, tmp_path_factory):
    config = CLUSTER_HUB_CONFIG + '\nc.MOSlurmSpawner.req_options = "--hold"\n'
    # the page reads reservations from the shared view: let it see the new one at once
    config += "c.MOSlurmSpawner.cluster_refresh_interval = 5\n"
    with running_hub(tmp_path_factory.mktemp("held"), config, env=slurm_cluster.env) as hub:
        yield hub


@pytest.mark.parametrize("way", ["form", "query", "query-opt", "api"])
@pytest.mark.parametrize(
    "options", [ADMIN_ENVIRONMENT, CUSTOM_ENVIRONMENT], ids=["admin", "custom"]
)
def test_each_documented_parameter_reaches_the_queued_job(slurm_cluster, held_hub, way, options):
    env = slurm_cluster.env
    alice = held_hub.login("alice")
    if way == "form":
        response = spawn_via_form(held_hub, alice, options)
    elif way.startswith("query"):
        response = spawn_via_query(held_hub, alice, options, prefixed=way == "query-opt")
    else:
        response = spawn_via_api(held_hub, "alice", options)
    assert response.status_code in (201, 202, 302), response.text[:2000]
    comment = comment_of(options)
    try:
        job_id = submitted_job(env, comment)
        job = job_fields(env, job_id)
        script = scontrol(env, "write", "batch_script", job_id, "-")
        check_job(job, script, options)
    finally:
        stop_and_wait(held_hub, env, comment)


def comment_of(options: dict[str, str]) -> str:
    return options["options"].split()[0].split("=", 1)[1]


def check_job(job: dict[str, str], script: str, options: dict[str, str]) -> None:
    assert job["Partition"] == options["partition"]
    assert job["CPUs/Task"] == options["nprocs"]
    assert job["MinMemoryNode"] == options["memory"]
    expected_time = {"0:45:00": "00:45:00", "90": "01:30:00"}[options["runtime"]]
    assert job["TimeLimit"] == expected_time
    assert job.get("Reservation", "(null)") == (options.get("reservation") or "(null)")
    assert job["Comment"] == comment_of(options)
    if "ngpus" in options:
        # the template comes from Slurm's GPU type on the gpu partition: gpu:fake:{}
        assert job["TresPerNode"] == f"gres:gpu:fake:{options['ngpus']}"
    if options["output"] == "true":
        assert job["StdOut"].startswith("/home/alice/slurm-")
    else:
        assert job["StdOut"] == "/dev/null"
    # values reach the script shell-quoted (a "~" stays for jupyterhub-singleuser to expand)
    assert f"export JUPYTERHUB_DEFAULT_URL={shlex.quote(options['default_url'])}\n" in script
    assert f"export JUPYTERHUB_ROOT_DIR={shlex.quote(options['root_dir'])}\n" in script
    if "environment_modules" in options:
        assert f"module load {options['environment_modules']}" in script
    assert "export PATH=/opt/moss-jobenv/bin" in script
