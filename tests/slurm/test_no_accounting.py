"""A site without slurmdbd (`dev/cluster start --no-accounting`), as many small sites run.

There is nothing to choose: no account or QOS field, no note, and a spawn goes through with no
``--account`` or ``--qos``; an account a link names goes to Slurm as given (well-formed only).
The restricted partitions still apply by group (``AllowGroups`` needs no database).
"""

from __future__ import annotations

import subprocess
import time

import pytest
from bs4 import BeautifulSoup
from support.cluster_hub import cluster_hub_config, spawn_via_api, user_jobs
from support.cluster_partitions import CLUSTER_PARTITIONS, JOBENV_BIN
from support.hub import running_hub

pytestmark = pytest.mark.no_accounting

SITE = {
    **CLUSTER_PARTITIONS,
    "lab": {"simple": False, "jupyter_environments": {"default": {"path": JOBENV_BIN}}},
}
CONFIG = cluster_hub_config(SITE) + 'c.MOSlurmSpawner.req_options = "--hold"\n'


@pytest.fixture(scope="module")
def plain_hub(plain_cluster, slurm_cluster, hub_infra, tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("plain"), CONFIG, env=slurm_cluster.env) as hub:
        yield hub


def controls(hub, user: str) -> BeautifulSoup:
    client = hub.login(user)
    response = client.get(
        hub.hub_url(f"moss/form/body/{user}/"), params={"moss_tab": "advanced", "partition": "cpu"}
    )
    response.raise_for_status()
    return BeautifulSoup(response.text, "html.parser")


def test_no_account_or_qos_is_offered_and_groups_still_apply(plain_hub):
    alice = controls(plain_hub, "alice")
    assert alice.find("select", attrs={"name": "account"}) is None
    assert alice.find("select", attrs={"name": "qos"}) is None
    assert alice.find(class_="moss-accounting-note") is None
    offered = [
        o["value"] for o in alice.find("select", attrs={"name": "partition"}).find_all("option")
    ]
    assert "lab" in offered
    bob = controls(plain_hub, "bob")
    offered = [
        o["value"] for o in bob.find("select", attrs={"name": "partition"}).find_all("option")
    ]
    assert "lab" not in offered  # bob is not in mosslab


def test_a_spawn_carries_no_account_and_a_given_one_goes_to_slurm(slurm_cluster, plain_hub):
    env = slurm_cluster.env
    assert user_jobs(env, "bob") == []
    try:
        options = {"partition": "debug", "runtime": "0:10:00", "account": "geology"}
        assert spawn_via_api(plain_hub, "bob", options).status_code in (201, 202)
        end = time.monotonic() + 30
        while not user_jobs(env, "bob"):
            assert time.monotonic() < end, "no job for bob"
            time.sleep(0.2)
        job = subprocess.run(
            ["scontrol", "show", "job", "-o", user_jobs(env, "bob")[0]],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        assert " Account=geology " in job, job
    finally:
        plain_hub.api().delete("users/bob/server")
        end = time.monotonic() + 30
        while user_jobs(env, "bob") and time.monotonic() < end:
            time.sleep(0.2)
    assert user_jobs(env, "bob") == []
