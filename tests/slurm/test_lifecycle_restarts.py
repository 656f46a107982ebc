"""Nothing is lost across restarts: of JupyterHub (a subprocess here), and of slurmctld.

The hub keeps each server's job id, node and partition in its database (``get_state``), and
JupyterHub keeps the options; a new hub process polls the jobs through the shared poller and
adopts the servers. slurmctld is restarted with ``dev/cluster restart-controller``, which leaves
slurmd and the jobs alone; while it is down, squeue fails, and a failing squeue means "unknown",
never "stopped".
"""

from __future__ import annotations

import subprocess
import time

import pytest
from support.infra import CLUSTER_SCRIPT
from support.spawning import (
    DEBUG_OPTIONS,
    WHOLE_NODE_OPTIONS,
    cancel,
    kill_hub,
    lifecycle_config,
    listed_state,
    new_user_token,
    request_spawn,
    restart_hub,
    server_model,
    server_state,
    stop_server,
    user_client,
    wait_for,
    wait_for_job_id,
    wait_job_state,
    wait_until_ready,
    wait_until_stopped,
)

pytestmark = pytest.mark.slurm

KEEP_SERVERS = "c.JupyterHub.cleanup_servers = False\n"
SECOND_OPTIONS = {"partition": "cpu", "nprocs": "2", "runtime": "1:00:00", "default_url": "/lab"}


def answers(hub, token: str, server: str = "") -> bool:
    path = f"user/alice/{server}/api/status" if server else "user/alice/api/status"
    return user_client(hub, token).get(path).status_code == 200


def test_servers_keep_running_and_answering_across_a_hub_restart(slurm_cluster, hub_factory):
    env = slurm_cluster.env
    hub = hub_factory(extra_config=lifecycle_config(KEEP_SERVERS), env=env)
    api = hub.api()
    job_ids: list[str] = []
    try:
        assert request_spawn(api, "alice", DEBUG_OPTIONS).status_code in (201, 202)
        assert request_spawn(api, "alice", SECOND_OPTIONS, "second").status_code in (201, 202)
        wait_until_ready(api, "alice")
        wait_until_ready(api, "alice", "second")
        before = {name: server_model(api, "alice", name) for name in ("", "second")}
        job_ids = [before[name]["state"]["job_id"] for name in ("", "second")]
        token = new_user_token(api, "alice")
        assert answers(hub, token) and answers(hub, token, "second")

        restart_hub(hub, env)
        api = hub.api()

        for name in ("", "second"):
            after = wait_until_ready(api, "alice", name, timeout=60)
            assert after["state"] == before[name]["state"]
            assert after["user_options"] == before[name]["user_options"]
        assert server_state(api, "alice", "second")["job_partition"] == "cpu"
        assert [listed_state(env, job_id) for job_id in job_ids] == ["RUNNING", "RUNNING"]
        assert wait_for("the proxy routes", lambda: answers(hub, token), 30)
        assert answers(hub, token, "second")
        assert "appears to have stopped" not in hub.log()

        stop_server(api, "alice", "second")
        stop_server(api, "alice")
        assert [listed_state(env, job_id) for job_id in job_ids] == ["", ""]
    finally:
        cancel(env, job_ids)


def test_a_spawn_interrupted_by_a_hub_crash_does_not_leave_its_job_queued(
    slurm_cluster, hub_factory
):
    """SIGKILL mid-spawn: the new hub finds the job id saved at submission and cancels it."""
    env = slurm_cluster.env
    hub = hub_factory(extra_config=lifecycle_config(KEEP_SERVERS), env=env)
    api = hub.api()
    job_ids: list[str] = []
    try:
        assert request_spawn(api, "bob", DEBUG_OPTIONS).status_code in (201, 202)
        wait_until_ready(api, "bob")  # holds a CPU: alice's whole-node job pends
        job_ids.append(server_state(api, "bob")["job_id"])
        assert request_spawn(api, "alice", WHOLE_NODE_OPTIONS).status_code == 202
        pending_job = wait_for_job_id(api, "alice")
        job_ids.append(pending_job)
        wait_job_state(env, pending_job, {"PENDING"})

        kill_hub(hub)
        restart_hub(hub, env)
        api = hub.api()

        wait_for(
            f"job {pending_job} to leave the queue", lambda: not listed_state(env, pending_job), 60
        )
        wait_until_stopped(api, "alice")
        assert server_model(api, "bob")["ready"]  # the running server was adopted
        assert listed_state(env, job_ids[0]) == "RUNNING"
        stop_server(api, "bob")
    finally:
        cancel(env, job_ids)


def test_servers_keep_running_while_slurmctld_restarts(slurm_cluster, hub_factory):
    """The controller is down for two poll intervals: the hub must not stop anything."""
    env = slurm_cluster.env
    # squeue waits for a controller that is away; a short timeout makes the hub's polls fail
    # during the outage instead, which is what this test is about.
    config = "c.Spawner.poll_interval = 4\nc.MOSlurmSpawner.slurm_timeout = 3\n"
    hub = hub_factory(extra_config=lifecycle_config(config), env=env)
    api = hub.api()
    job_id = ""
    try:
        assert request_spawn(api, "alice", DEBUG_OPTIONS).status_code in (201, 202)
        wait_until_ready(api, "alice")
        job_id = server_state(api, "alice")["job_id"]
        token = new_user_token(api, "alice")

        subprocess.run(
            [str(CLUSTER_SCRIPT), "restart-controller", "--down", "12"],
            check=True,
            timeout=120,
            capture_output=True,
        )
        time.sleep(12)  # more polls, now answered by the new controller

        assert listed_state(env, job_id) == "RUNNING"
        assert server_model(api, "alice")["ready"]
        assert answers(hub, token)
        assert "it still counts as running" in hub.log()  # polls failed during the outage
        assert "has ended" not in hub.log()
        stop_server(api, "alice")
        assert listed_state(env, job_id) == ""
    finally:
        cancel(env, [job_id])
