"""Every way in — form POST, query string, REST API — rejects the same bad values the same way.

The hub runs against the real cluster, so limits come from Slurm. For each bad value: a 400 whose
message names the field, never a 500, and nothing reaches Slurm (slurmctld's count of batch
submissions does not move and alice has no job).
"""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from support.cluster_hub import (
    CLUSTER_HUB_CONFIG,
    sdiag_count,
    spawn_via_api,
    spawn_via_form,
    spawn_via_query,
    user_jobs,
)
from support.hub import running_hub

GOOD = {"partition": "cpu", "nprocs": "1", "runtime": "00:30:00"}

# (field, bad value, extra fields): each must be refused with a message naming the field.
BAD_VALUES = [
    ("partition", "nope", {}),
    ("partition", "cpu\n#SBATCH --uid=0", {}),
    ("nprocs", "0", {}),
    ("nprocs", "9999", {}),
    ("nprocs", "two", {}),
    ("nprocs", "1;id", {}),
    ("ngpus", "1", {}),  # the cpu partition offers no GPUs
    ("ngpus", "3", {"partition": "gpu"}),  # gpu nodes have 2
    ("memory", "99999G", {}),
    ("memory", "12X", {}),
    ("memory", "1G\n#SBATCH --uid=0", {}),
    ("runtime", "2:00:00", {"partition": "debug"}),  # debug allows 1 h
    ("runtime", "soon", {}),
    ("runtime", "1:00:00;reboot", {}),
    ("reservation", "bad name", {}),
    ("reservation", "$(id)", {}),
    ("options", "--uid=0", {}),
    ("options", "--partition=debug", {}),
    ("options", "--parti=debug", {}),
    ("options", "--wrap=id", {}),
    ("options", "-p debug", {}),
    ("options", "--comment=x\n#SBATCH --uid=0", {}),
    ("output", "maybe", {}),
    ("default_url", "//evil.example", {}),
    ("default_url", "https://evil.example/", {}),
    ("default_url", "lab", {}),
    ("root_dir", "relative/folder", {}),
    ("root_dir", "/tmp/\x00x", {}),
    ("environment_id", "nope", {}),
    ("environment_path", "relative/bin", {}),
    ("environment_path", "/opt/x y/bin", {}),
    ("environment_path", "/opt/`id`/bin", {}),
    ("environment_modules", "foo;bar", {}),
    ("environment_modules", "$(id)", {}),
]
WAYS = ["form", "query", "query-opt", "api"]
# A NUL cannot travel in a URL: the form and the API carry it, the query string never sees it.
CASES = [
    pytest.param(way, field, value, extra, id=f"{way}-{field}-{value!r}")
    for field, value, extra in BAD_VALUES
    for way in WAYS
    if not (way.startswith("query") and "\x00" in value)
]


@pytest.fixture(scope="module")
def cluster_hub(slurm_cluster, hub_infra, tmp_path_factory):
    with running_hub(
        tmp_path_factory.mktemp("ways-in"), CLUSTER_HUB_CONFIG, env=slurm_cluster.env
    ) as hub:
        yield hub


@pytest.fixture(scope="module")
def alice(cluster_hub):
    return cluster_hub.login("alice")


def ask(way: str, hub, client, options: dict[str, str]):
    if way == "form":
        return spawn_via_form(hub, client, options)
    if way == "query":
        return spawn_via_query(hub, client, options)
    if way == "query-opt":
        return spawn_via_query(hub, client, options, prefixed=True)
    return spawn_via_api(hub, "alice", options)


def message_of(way: str, response) -> str:
    if way == "api":
        return response.json()["message"]
    return BeautifulSoup(response.text, "html.parser").get_text(" ")


@pytest.mark.parametrize(("way", "field", "value", "extra"), CASES)
def test_bad_value_is_refused_naming_its_field_and_nothing_is_submitted(
    slurm_cluster, cluster_hub, alice, way, field, value, extra
):
    submissions_before = sdiag_count(slurm_cluster.env, "REQUEST_SUBMIT_BATCH_JOB")
    jobs_before = set(user_jobs(slurm_cluster.env, "alice"))
    response = ask(way, cluster_hub, alice, {**GOOD, **extra, field: value})

    assert response.status_code == 400, response.text[:2000]
    message = message_of(way, response)
    assert f"{field}:" in message, message[:2000]
    assert sdiag_count(slurm_cluster.env, "REQUEST_SUBMIT_BATCH_JOB") == submissions_before
    # other tests' jobs may come and go, but none is new
    assert set(user_jobs(slurm_cluster.env, "alice")) <= jobs_before


def test_a_bad_request_never_reaches_the_hub_as_a_500(cluster_hub, alice):
    """Garbage of every type through the API: a 400 with a message, whatever the type."""
    for options in (
        {"nprocs": {"nested": 1}},
        {"nprocs": [1, 2]},
        {"partition": 42},
        {"output": {"x": 1}},
        {"unknown_option": "1"},
    ):
        response = spawn_via_api(cluster_hub, "alice", {**GOOD, **options})
        assert response.status_code == 400, (options, response.text)
        assert response.json()["message"]
