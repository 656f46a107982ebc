"""The port-report endpoint against real server tokens, taken from real jobs.

A single-user server's API token is in its job's environment, so the user holds it. With
batchspawner's own handler, posting ``{"exec_prefix": "..."}`` with it would change the command
the hub runs as root to stop the job. Here the token is read from the running server's
``/proc/PID/environ`` (as root), exactly what the user could read in their own job.
"""

from __future__ import annotations

import contextlib
import os
import uuid

import httpx
import pytest
from support.spawning import (
    DEBUG_OPTIONS,
    WHOLE_NODE_OPTIONS,
    cancel,
    lifecycle_config,
    listed_state,
    new_user_token,
    process_environ,
    request_spawn,
    server_model,
    server_state,
    singleuser_pid,
    stop_server,
    user_client,
    wait_for,
    wait_for_job_id,
    wait_job_state,
    wait_until_ready,
)

pytestmark = pytest.mark.slurm


@pytest.fixture
def cluster_hub(slurm_cluster, hub_factory):
    return hub_factory(extra_config=lifecycle_config(), env=slurm_cluster.env)


def running_server_token(api, user: str, name: str = "") -> tuple[str, str]:
    """(job id, the server's own API token) of a running server."""
    wait_until_ready(api, user, name)
    job_id = server_state(api, user, name)["job_id"]
    pid = wait_for("the Jupyter process", lambda: singleuser_pid(job_id), 30)
    return job_id, process_environ(pid)["JUPYTERHUB_API_TOKEN"]


def report(hub, token: str, body) -> httpx.Response:
    return httpx.post(
        hub.hub_url("api/batchspawner"), json=body, headers={"Authorization": f"token {token}"}
    )


def test_a_servers_own_token_cannot_set_anything_but_the_port(slurm_cluster, cluster_hub):
    env, api = slurm_cluster.env, cluster_hub.api()
    marker = f"/tmp/moss-pwned-{uuid.uuid4().hex}"
    job_ids = []
    try:
        assert request_spawn(api, "alice", DEBUG_OPTIONS).status_code in (201, 202)
        job_id, token = running_server_token(api, "alice")
        job_ids.append(job_id)
        url_before = server_model(api, "alice")["url"]
        state_before = server_state(api, "alice")

        evil = {
            "port": 1234,
            "exec_prefix": f"touch {marker}",
            "batch_query_cmd": f"touch {marker}",
        }
        for body in (evil, {"cmd": ["touch", marker]}, {"batch_cancel_cmd": f"touch {marker}"}):
            response = report(cluster_hub, token, body)
            assert response.status_code == 400, response.text

        # A lone port is well formed, but this server is not waiting for one any more; nor
        # for news that its job started (which would make the hub ask Slurm about it).
        assert report(cluster_hub, token, {"port": 1234}).status_code == 409
        assert report(cluster_hub, token, {"started": True}).status_code == 409

        assert server_model(api, "alice")["url"] == url_before
        assert server_state(api, "alice") == state_before
        # Stopping runs exec_prefix + scancel: it still cancels the job, and runs nothing else.
        stop_server(api, "alice")
        assert listed_state(env, job_id) == ""
        assert not os.path.exists(marker)

        # The next spawn still runs jupyterhub-singleuser, not a command from the body.
        assert request_spawn(api, "alice", DEBUG_OPTIONS).status_code in (201, 202)
        job_id, _ = running_server_token(api, "alice")
        job_ids.append(job_id)
        assert not os.path.exists(marker)
        stop_server(api, "alice")
    finally:
        cancel(env, job_ids)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker)


def test_one_users_server_token_cannot_set_another_users_port(slurm_cluster, cluster_hub):
    """bob's token is posted while alice's spawn waits for its port: alice's stays untouched.

    bob's running server holds a CPU, so alice's request for the whole node pends until it
    stops.
    """
    env, api = slurm_cluster.env, cluster_hub.api()
    job_ids: list[str] = []
    try:
        assert request_spawn(api, "bob", DEBUG_OPTIONS).status_code in (201, 202)
        bob_job, bob_token = running_server_token(api, "bob")
        job_ids.append(bob_job)

        assert request_spawn(api, "alice", WHOLE_NODE_OPTIONS).status_code == 202
        alice_job = wait_for_job_id(api, "alice")
        job_ids.append(alice_job)
        wait_job_state(env, alice_job, {"PENDING"})
        # alice's spawner waits for a port; bob's token only ever reaches bob's servers
        response = report(cluster_hub, bob_token, {"port": 4321})
        assert response.status_code == 409  # bob's own server is not waiting for one

        stop_server(api, "bob")
        wait_until_ready(api, "alice")
        # The hub routes alice to the port her own job reported: her server answers.
        alice = user_client(cluster_hub, new_user_token(api, "alice"))
        assert alice.get("user/alice/api/status").status_code == 200
        stop_server(api, "alice")
    finally:
        cancel(env, job_ids)
