"""The job behind a server, on the real cluster: submit, run, report the port, answer, stop.

Each test starts a real JupyterHub subprocess whose MOSlurmSpawner submits real Slurm jobs as
alice (through ``sudo -E -u alice``); the jobs run jupyterhub-singleuser from dev/jobenv.
"""

from __future__ import annotations

import pytest
from support.spawning import (
    DEBUG_OPTIONS,
    job_processes,
    lifecycle_config,
    listed_state,
    new_user_token,
    request_spawn,
    server_state,
    singleuser_pid,
    stop_server,
    user_client,
    wait_for,
    wait_until_ready,
)

pytestmark = pytest.mark.slurm


@pytest.fixture
def cluster_hub(slurm_cluster, hub_factory):
    return hub_factory(extra_config=lifecycle_config(), env=slurm_cluster.env)


def test_rest_spawn_runs_jupyter_in_a_job_and_stop_cancels_it(slurm_cluster, cluster_hub):
    hub, env = cluster_hub, slurm_cluster.env
    api = hub.api()
    job_id = ""
    try:
        response = request_spawn(api, "alice", DEBUG_OPTIONS)
        assert response.status_code in (201, 202), response.text
        wait_until_ready(api, "alice")
        job_id = server_state(api, "alice")["job_id"]
        assert listed_state(env, job_id) == "RUNNING"
        assert server_state(api, "alice")["job_partition"] == "debug"

        # The hub's proxy reaches the server the job runs.
        client = user_client(hub, new_user_token(api, "alice"))
        status = client.get("user/alice/api/status")
        assert status.status_code == 200, status.text
        assert singleuser_pid(job_id) is not None

        stop_server(api, "alice")
        assert listed_state(env, job_id) == ""
        assert wait_for("the job's processes to end", lambda: not job_processes(job_id), 30)
    finally:
        if job_id and listed_state(env, job_id):
            stop_server(api, "alice")
