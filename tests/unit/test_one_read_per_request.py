"""One merge of the limits per request, and one parse of the options per spawn (issue 12).

Counted on a real MOSlurmSpawner by wrapping the two functions wherever the package holds them,
so a second call from any module is seen. Only the cluster snapshot is fixed.
"""

from __future__ import annotations

import asyncio
import sys
import types
from datetime import datetime, timezone

import pytest

from jupyterhub_moss.limits import merge_partition_limits
from jupyterhub_moss.options import parse_user_options
from jupyterhub_moss.slurm.estimates import StartEstimator
from jupyterhub_moss.slurm.models import PartitionInfo, StartEstimate
from jupyterhub_moss.slurm.view import ClusterSnapshot
from jupyterhub_moss.spawner import MOSlurmSpawner

pytestmark = pytest.mark.unit

PARTITIONS = {
    "cpu": {"max_nprocs": 8, "max_runtime": 86400, "gpu": "", "jupyter_environments": {}},
    "gpu": {"max_nprocs": 4, "gpu": "gpu:fake:{}", "max_ngpus": 2},
}
for config in PARTITIONS.values():
    config["jupyter_environments"] = {"default": {"path": "/opt/env/bin/"}}


def snapshot() -> ClusterSnapshot:
    info = PartitionInfo(
        name="cpu",
        state="up",
        is_default=True,
        nodes_idle=1,
        nodes_total=1,
        cpus_idle=8,
        cpus_total=8,
        cpus_per_node=8,
        memory_per_node_mb=16000,
        max_runtime=86400,
    )
    return ClusterSnapshot({"cpu": info}, (), datetime.now(timezone.utc))


class Counter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, function) -> None:
        self.calls = 0

        def counted(*args, **kwargs):
            self.calls += 1
            return function(*args, **kwargs)

        holders = [
            module
            for name, module in list(sys.modules.items())
            if name.startswith("jupyterhub_moss") and getattr(module, function.__name__, None)
        ]
        for module in holders:
            if getattr(module, function.__name__) is function:
                monkeypatch.setattr(module, function.__name__, counted)
        assert holders, f"nothing in the package holds {function.__name__}"


@pytest.fixture
def merges(monkeypatch) -> Counter:
    return Counter(monkeypatch, merge_partition_limits)


@pytest.fixture
def parses(monkeypatch) -> Counter:
    return Counter(monkeypatch, parse_user_options)


def make_spawner(saved: dict | None = None) -> MOSlurmSpawner:
    spawner = MOSlurmSpawner(
        partitions=PARTITIONS, user=types.SimpleNamespace(name="alice", spawners={})
    )
    spawner.orm_spawner = types.SimpleNamespace(name="", user_options=saved or {}, server=None)
    fixed = snapshot()

    async def fixed_snapshot() -> ClusterSnapshot:
        return fixed

    spawner.cluster_snapshot = fixed_snapshot

    async def query(username: str, args: list[str], script: str) -> StartEstimate:
        return StartEstimate(datetime.now(timezone.utc), 1, "c1")

    spawner.start_estimator = lambda: StartEstimator(query=query)
    return spawner


def test_the_page_merges_the_limits_once(merges):
    spawner = make_spawner(saved={"partition": "cpu", "nprocs": "4", "runtime": "2:00:00"})
    html = asyncio.run(spawner.render_options_form())
    assert 'name="nprocs"' in html
    assert merges.calls == 1


@pytest.mark.parametrize("fragment", ["body", "partition", "availability", "estimate"])
def test_each_fragment_merges_the_limits_once(merges, fragment):
    query = {"moss_tab": [b"advanced"], "partition": [b"gpu"], "nprocs": [b"2"]}
    html = asyncio.run(make_spawner().render_form_fragment(fragment, "", query))
    assert html.strip()
    assert merges.calls == 1


async def spawn_from_the_form(spawner: MOSlurmSpawner, formdata: dict) -> None:
    """JupyterHub's steps for a form spawn, up to what start() submits."""
    saved = await spawner.options_from_form(formdata)
    spawner.user_options = saved  # as User.spawn does
    await spawner._run_apply_user_options(spawner.user_options)  # JupyterHub >= 5.3
    request = await spawner.spawn_request()  # what start() takes
    script = spawner.build_batch_script(request, {})  # and submits
    assert "#SBATCH --partition=gpu" in script
    assert "#SBATCH --gres=gpu:fake:1" in script


def test_a_form_spawn_parses_its_options_once_against_one_merge(merges, parses):
    formdata = {"partition": ["gpu"], "nprocs": ["2"], "ngpus": ["1"], "_xsrf": ["t"]}
    asyncio.run(spawn_from_the_form(make_spawner(), formdata))
    assert parses.calls == 1
    assert merges.calls == 1


def test_a_rest_api_spawn_parses_its_options_once(merges, parses):
    async def rest_spawn(spawner: MOSlurmSpawner) -> None:
        spawner.user_options = {"partition": "gpu", "ngpus": 1}
        await spawner._run_apply_user_options(spawner.user_options)
        request = await spawner.spawn_request()
        assert request.partition.name == "gpu"

    asyncio.run(rest_spawn(make_spawner()))
    assert parses.calls == 1
    assert merges.calls == 1


def test_each_spawn_is_checked_afresh(parses):
    """The request is handed over once: a second spawn does not reuse the first one's check."""
    spawner = make_spawner()
    formdata = {"partition": ["gpu"], "nprocs": ["2"], "ngpus": ["1"]}
    asyncio.run(spawn_from_the_form(spawner, formdata))
    asyncio.run(spawner.spawn_request())  # a later start with the same user_options
    assert parses.calls == 2


def test_changed_options_are_checked_again(parses):
    """Options changed between the form and the start (an admin's hook) are never trusted."""

    async def changed(spawner: MOSlurmSpawner) -> None:
        spawner.user_options = await spawner.options_from_form({"partition": ["gpu"]})
        spawner.user_options = {**spawner.user_options, "nprocs": "3"}
        request = await spawner.spawn_request()
        assert request.options.nprocs == 3

    asyncio.run(changed(make_spawner()))
    assert parses.calls == 2
