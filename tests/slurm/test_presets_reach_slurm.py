"""The admin's defaults and locks reach the job Slurm queues, through each way in (issue 16).

As in test_ways_in_reach_slurm.py, the hub submits for real with the admin option ``--hold``, so
the job waits while the test reads it back with ``scontrol show job``; then the server is
stopped through the REST API, which cancels the job. A request sending another value of a lock
is refused before Slurm: no job appears.
"""

from __future__ import annotations

import copy
import subprocess
import time

import pytest
from support.cluster_hub import cluster_hub_config, spawn_via_api, spawn_via_form, spawn_via_query
from support.cluster_partitions import CLUSTER_PARTITIONS
from support.hub import running_hub

pytestmark = pytest.mark.slurm

PARTITIONS = copy.deepcopy(CLUSTER_PARTITIONS)
PARTITIONS["gpu"]["locked_fields"] = {"runtime": "0:20:00", "ngpus": 1}
HUB_SETTINGS = """
c.MOSlurmSpawner.req_options = "--hold"
c.MOSlurmSpawner.field_defaults = {"memory": "700M", "output": True, "runtime": "0:40:00"}
"""


@pytest.fixture(scope="module")
def preset_hub(slurm_cluster, hub_infra, tmp_path_factory):
    config = cluster_hub_config(PARTITIONS) + HUB_SETTINGS
    with running_hub(tmp_path_factory.mktemp("presets"), config, env=slurm_cluster.env) as hub:
        yield hub


def alice_jobs(env, comment: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "-u", "alice", "-o", "%i|%k"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return [line.split("|")[0] for line in out.splitlines() if line.endswith(f"|{comment}")]


def queued_job(env, comment: str) -> dict[str, str]:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        jobs = alice_jobs(env, comment)
        if jobs:
            shown = subprocess.run(
                ["scontrol", "show", "job", "-o", jobs[0]],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            return dict(word.partition("=")[::2] for word in shown.split())
        time.sleep(0.2)
    raise AssertionError(f"no job with comment {comment!r} was queued for alice")


def stop(hub, env, comment: str) -> None:
    hub.api().delete("users/alice/server")
    end = time.monotonic() + 30
    while alice_jobs(env, comment) and time.monotonic() < end:
        time.sleep(0.2)
    assert alice_jobs(env, comment) == []


def spawn(hub, way: str, options: dict[str, str]):
    if way == "form":
        return spawn_via_form(hub, hub.login("alice"), options)
    if way == "query":
        return spawn_via_query(hub, hub.login("alice"), options)
    return spawn_via_api(hub, "alice", options)


WAYS = ["form", "query", "api"]


@pytest.mark.parametrize("way", WAYS)
def test_locks_and_defaults_reach_the_job(slurm_cluster, preset_hub, way):
    comment = f"presets-{way}"
    options = {"partition": "gpu", "nprocs": "1", "options": f"--comment={comment}"}
    response = spawn(preset_hub, way, options)
    assert response.status_code in (201, 202, 302), response.text[:2000]
    try:
        job = queued_job(slurm_cluster.env, comment)
        assert job["TimeLimit"] == "00:20:00"  # gpu's lock, not the hub's default of 40 min
        assert job["TresPerNode"] == "gres:gpu:fake:1"  # locked
        assert job["MinMemoryNode"] == "700M"  # the hub's default
        assert job["StdOut"].startswith("/home/alice/slurm-")  # the hub's default: saved
    finally:
        stop(preset_hub, slurm_cluster.env, comment)


@pytest.mark.parametrize("way", WAYS)
def test_another_value_of_a_lock_never_reaches_slurm(slurm_cluster, preset_hub, way):
    comment = f"presets-refused-{way}"
    options = {"partition": "gpu", "runtime": "1:00:00", "options": f"--comment={comment}"}
    response = spawn(preset_hub, way, options)
    if way == "query":  # JupyterHub shows the form again, with the message
        assert "runtime: set to 00:20:00 by this hub&#39;s administrators on gpu" in response.text
    else:
        assert response.status_code == 400, response.text[:2000]
        assert "runtime: set to 00:20:00" in response.text
    time.sleep(1)  # a submission would have been queued by now
    assert alice_jobs(slurm_cluster.env, comment) == []
    assert preset_hub.api().get("users/alice").json()["servers"] == {}
