"""GPU types on a real cluster: dev/cluster's multi layout, whose GPU node g1 has two fake
types (gpu:fake:2 and gpu:other:1).

The hub's gpu partition leaves its GPUs to Slurm, so the types come from Slurm's GRES. The hub
submits for real with the admin option ``--hold``; the held job is read back with
``scontrol show job`` and then stopped through the REST API, which cancels it.

This module switches dev/cluster to its multi layout and back to the single layout at the end
(other tests use that one); switching cancels every job on the cluster.
"""

from __future__ import annotations

import pytest
from support.cluster_hub import (
    CLUSTER_HUB_CONFIG,
    sdiag_count,
    spawn_via_api,
    spawn_via_form,
    spawn_via_query,
)
from support.cluster_partitions import MULTI_LAYOUT_GPUS
from support.held_jobs import (
    job_fields,
    scontrol,
    stop_and_wait,
    submitted_job,
    switch_layout,
)
from support.hub import running_hub
from support.infra import running_cluster

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def two_gpu_types(slurm_cluster):
    switch_layout("multi")
    try:
        yield running_cluster()
    finally:
        switch_layout("single")


@pytest.fixture(scope="module")
def held_hub(two_gpu_types, hub_infra, tmp_path_factory):
    config = CLUSTER_HUB_CONFIG + '\nc.MOSlurmSpawner.req_options = "--hold"\n'
    with running_hub(tmp_path_factory.mktemp("gpu-types"), config, env=two_gpu_types.env) as hub:
        yield hub


def test_the_layout_has_two_gpu_types_on_its_gpu_node(two_gpu_types):
    node = scontrol(two_gpu_types.env, "show", "node", "-o", "g1")
    gres = ",".join(f"gpu:{name}:{count}" for name, count in MULTI_LAYOUT_GPUS.items())
    assert f"Gres={gres} " in node


@pytest.mark.parametrize("way", ["form", "query", "api"])
def test_the_chosen_type_reaches_the_job(two_gpu_types, held_hub, way):
    env = two_gpu_types.env
    comment = f"gpu-type-{way}"
    options = {
        "partition": "gpu",
        "nprocs": "1",
        "ngpus": "1",
        "gpu_type": "other",
        "runtime": "0:30:00",
        "options": f"--comment={comment}",
    }
    alice = held_hub.login("alice")
    if way == "form":
        response = spawn_via_form(held_hub, alice, options)
    elif way == "query":
        response = spawn_via_query(held_hub, alice, options, prefixed=True)
    else:
        response = spawn_via_api(held_hub, "alice", options)
    assert response.status_code in (201, 202, 302), response.text[:2000]
    try:
        job = job_fields(env, submitted_job(env, comment))
        assert job["TresPerNode"] == "gres:gpu:other:1"
        assert job["Partition"] == "gpu"
    finally:
        stop_and_wait(held_hub, env, comment)


def test_any_type_asks_slurm_for_any_gpu(two_gpu_types, held_hub):
    env = two_gpu_types.env
    comment = "gpu-type-any"
    options = {"partition": "gpu", "ngpus": "1", "options": f"--comment={comment}"}
    response = spawn_via_api(held_hub, "alice", options)
    assert response.status_code in (201, 202), response.text[:2000]
    try:
        job = job_fields(env, submitted_job(env, comment))
        assert job["TresPerNode"] == "gres:gpu:1"
    finally:
        stop_and_wait(held_hub, env, comment)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ngpus": "2", "gpu_type": "other"}, "ngpus: at most 1 other GPUs on gpu"),
        ({"ngpus": "1", "gpu_type": "a100"}, "gpu_type: gpu has no GPU type 'a100'"),
    ],
    ids=["over-the-types-limit", "unknown-type"],
)
def test_a_request_the_type_cannot_take_is_refused_before_slurm(
    two_gpu_types, held_hub, options, message
):
    env = two_gpu_types.env
    submissions_before = sdiag_count(env, "REQUEST_SUBMIT_BATCH_JOB")
    response = spawn_via_api(held_hub, "alice", {"partition": "gpu", **options})
    assert response.status_code == 400, response.text[:2000]
    assert message in response.json()["message"]
    assert sdiag_count(env, "REQUEST_SUBMIT_BATCH_JOB") == submissions_before
