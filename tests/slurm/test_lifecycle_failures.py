"""Spawns that cannot succeed fail fast, with Slurm's own words, and leave no job behind.

batchspawner 1.3.0 waits until ``start_timeout`` when a job dies early and shows a bare 500 or
an empty reason. Here each failure must reach the user within seconds of Slurm noticing, as
plain text: the job's final state and reason, the last lines of its output file when it kept
one, or sbatch's own error message. ``start_timeout`` is 180 s in these hubs, so every bound
below is far from it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from datetime import datetime

import pytest
from support.hub import TYPED_IN_ADDRESS_BAR
from support.infra import CLUSTER_SCRIPT
from support.spawning import (
    DEBUG_OPTIONS,
    WHOLE_NODE_OPTIONS,
    blocker,
    cancel,
    lifecycle_config,
    listed_state,
    progress_events,
    request_spawn,
    server_model,
    slurm,
    stop_server,
    wait_for,
    wait_for_job_id,
    wait_job_state,
    wait_until_stopped,
)

pytestmark = pytest.mark.slurm

FAST = 20.0  # seconds: "within a few seconds of Slurm noticing", plus a polling interval


@pytest.fixture
def cluster_hub(slurm_cluster, hub_factory):
    return hub_factory(extra_config=lifecycle_config(), env=slurm_cluster.env)


def failure_message(hub, user: str = "alice") -> str:
    """The message JupyterHub gives for the failed spawn (its progress stream's last event)."""
    events = list(progress_events(hub, user))
    assert events and events[-1].get("failed"), events
    assert all("html_message" not in event for event in events[:-1])
    return events[-1]["message"]


def spawn_error(response, hub) -> str:
    """The spawn's error, whether it came back with the request or later."""
    if response.status_code >= 400:
        assert response.status_code != 500, response.text
        return response.json()["message"]
    assert response.status_code == 202, response.text
    return failure_message(hub)


def test_a_bad_environment_path_fails_within_seconds_showing_the_jobs_output(
    slurm_cluster, cluster_hub
):
    api = cluster_hub.api()
    options = {**DEBUG_OPTIONS, "environment_path": "/nonexistent/bin/", "output": "true"}
    started = time.monotonic()
    response = request_spawn(api, "alice", options)
    message = spawn_error(response, cluster_hub)
    assert time.monotonic() - started < FAST
    job_id = message.split("Slurm job ", 1)[1].split()[0]
    try:
        assert f"Slurm job {job_id} ended before Jupyter started: FAILED" in message
        assert "NonZeroExitCode" in message
        assert f"/home/alice/slurm-{job_id}.out" in message
        # the cause, from the job's output file: the environment has no such program
        assert "/nonexistent/bin/jupyterhub-singleuser: no such program" in message
        assert listed_state(slurm_cluster.env, job_id) == ""
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"/home/alice/slurm-{job_id}.out")


def test_without_saved_output_the_message_says_how_to_keep_it(slurm_cluster, cluster_hub):
    api = cluster_hub.api()
    response = request_spawn(api, "alice", {**DEBUG_OPTIONS, "environment_path": "/nope/bin/"})
    message = spawn_error(response, cluster_hub)
    assert "ended before Jupyter started: FAILED" in message
    assert "output was not saved" in message


def test_a_job_cancelled_while_pending_fails_the_spawn_at_once(slurm_cluster, cluster_hub):
    env, api = slurm_cluster.env, cluster_hub.api()
    blocking = blocker(env)
    job_id = ""
    try:
        response = request_spawn(api, "alice", WHOLE_NODE_OPTIONS)
        assert response.status_code == 202, response.text
        job_id = wait_for_job_id(api, "alice")
        wait_job_state(env, job_id, {"PENDING"})
        cancelled_at = time.monotonic()
        slurm(env, "scancel", job_id)  # an admin, outside the hub
        message = failure_message(cluster_hub)
        assert time.monotonic() - cancelled_at < FAST
        assert f"Slurm job {job_id} ended before Jupyter started: CANCELLED" in message
        wait_until_stopped(api, "alice")
    finally:
        cancel(env, [blocking, job_id])


def test_a_job_killed_while_jupyter_starts_fails_the_spawn_at_once(slurm_cluster, hub_factory):
    """An admin prologue that sleeps holds the job between "running" and "port reported"."""
    env = slurm_cluster.env
    hub = hub_factory(
        extra_config=lifecycle_config('c.MOSlurmSpawner.req_prologue = "sleep 60"'), env=env
    )
    api = hub.api()
    job_id = ""
    try:
        response = request_spawn(api, "alice", DEBUG_OPTIONS)
        assert response.status_code == 202, response.text
        job_id = wait_for_job_id(api, "alice")
        wait_job_state(env, job_id, {"RUNNING"})
        killed_at = time.monotonic()
        slurm(env, "scancel", job_id)
        message = failure_message(hub)
        assert time.monotonic() - killed_at < FAST
        assert f"Slurm job {job_id} ended before Jupyter started: CANCELLED" in message
    finally:
        cancel(env, [job_id])


def test_sbatch_rejecting_the_admins_settings_shows_slurms_error_not_a_500(
    slurm_cluster, hub_factory
):
    env = slurm_cluster.env
    hub = hub_factory(
        extra_config=lifecycle_config('c.MOSlurmSpawner.req_memory = "999999M"'), env=env
    )
    response = request_spawn(hub.api(), "alice", DEBUG_OPTIONS)
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert message.startswith("Slurm refused the job: ")
    assert "Memory specification can not be satisfied" in message
    assert "sbatch: error:" not in message


def test_sbatch_rejecting_a_users_option_shows_slurms_error_on_the_page(slurm_cluster, cluster_hub):
    """The user's extra option passes our checks; Slurm itself refuses it."""
    client = cluster_hub.login("alice")
    response = client.get(
        cluster_hub.hub_url("spawn"),
        params={**DEBUG_OPTIONS, "options": "--constraint=nope"},
        headers=TYPED_IN_ADDRESS_BAR,
    )
    assert response.status_code == 400
    assert "Slurm refused the job: Batch job submission failed: Invalid feature specification" in (
        response.text
    )
    assert server_model(cluster_hub.api(), "alice") is None or not server_model(
        cluster_hub.api(), "alice"
    ).get("ready")


def test_cancelling_a_pending_spawn_cancels_its_job(slurm_cluster, cluster_hub):
    env, api = slurm_cluster.env, cluster_hub.api()
    blocking = blocker(env)
    job_id = ""
    try:
        response = request_spawn(api, "alice", WHOLE_NODE_OPTIONS)
        assert response.status_code == 202, response.text
        job_id = wait_for_job_id(api, "alice")
        wait_job_state(env, job_id, {"PENDING"})
        stop_server(api, "alice")
        wait_for(f"job {job_id} to leave the queue", lambda: listed_state(env, job_id) == "", 30)
    finally:
        cancel(env, [blocking, job_id])


def test_spawning_while_slurmctld_is_down_says_slurm_is_not_answering(slurm_cluster, hub_factory):
    """sbatch waits for an absent controller; the hub gives up after ``slurm_timeout``."""
    env = slurm_cluster.env
    hub = hub_factory(
        extra_config=lifecycle_config("c.MOSlurmSpawner.slurm_timeout = 3\n"), env=env
    )
    outage = subprocess.Popen(
        [str(CLUSTER_SCRIPT), "restart-controller", "--down", "15"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)  # the controller is down now
        started = datetime.now()
        response = request_spawn(hub.api(), "alice", DEBUG_OPTIONS)
        assert response.status_code == 503, response.text
        assert response.json()["message"].startswith("Slurm is not answering: sbatch gave no")
    finally:
        assert outage.wait(timeout=60) == 0
    # sbatch was stopped before the controller came back: no server job was submitted
    # (other tests may submit jobs of their own as alice meanwhile: only ours are counted)
    ours = ["-u", "alice", "-n", "jupyterhub-moss", "-o", "%V"]
    submitted = slurm(env, "squeue", "-h", "-t", "all", *ours).stdout.split()
    assert not [when for when in submitted if datetime.fromisoformat(when) >= started]
