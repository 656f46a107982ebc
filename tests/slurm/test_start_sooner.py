"""Start sooner on…, against the real local cluster.

The cpu partition is made busy as a site would (support/busy_partition.py: CPUs kept for the
other partitions of the same nodes, and a job holding cpu's share for 2 h): a one-CPU request
then waits about 2 h on cpu and starts at once on gpu and debug.

- the estimate across partitions agrees with ``sbatch --test-only`` run by hand as alice;
- 20 viewers (alice's tabs, bob's tabs, the admin looking at alice's form) asking for the
  estimate for 60 s, each changing the CPU count, cost slurmctld at most one estimate per
  partition per user per refresh interval, counted in sdiag's per-user RPC table.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from support.busy_partition import busy_cpu_partition, run
from support.cluster_hub import cluster_hub_config
from support.cluster_partitions import CLUSTER_PARTITIONS
from support.hub import HubProcess, running_hub, xsrf_from_page

from jupyterhub_moss.batch_script import ScriptSettings
from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.context import FormContext
from jupyterhub_moss.form.estimate import home_of, start_estimate
from jupyterhub_moss.limits import merge_partition_limits
from jupyterhub_moss.options import OptionsPolicy
from jupyterhub_moss.slurm.commands import SlurmRunner
from jupyterhub_moss.slurm.estimates import StartEstimator
from jupyterhub_moss.slurm.view import ClusterView

pytestmark = [pytest.mark.slurm, pytest.mark.accounting]

ONE_CPU = {"partition": "cpu", "nprocs": "1", "runtime": "00:30:00"}
MARGIN = timedelta(seconds=60)  # start estimates move with the clock between two runs
REFRESH = 10  # availability_refresh_interval of the load test's hub
VIEWERS, DURATION = 20, 60.0
PARTITIONS = ("cpu", "gpu", "debug")  # the hub's, all open to alice and bob


@pytest.fixture(scope="module")
def busy_cpu(slurm_cluster, accounting_cluster) -> Iterator[None]:
    with busy_cpu_partition(slurm_cluster.env):
        yield


def by_hand(env: Mapping[str, str], user: str, partition: str) -> datetime:
    """``sbatch --test-only`` typed by hand: its start time, read without the package."""
    done = run(
        env, "sbatch", "--test-only", f"--partition={partition}", "--cpus-per-task=1",
        "--time=00:30:00", f"--chdir={Path('~' + user).expanduser()}", "--output=/dev/null",
        "--wrap=true", user=user,
    )  # fmt: skip
    match = re.search(r"to start at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", done.stderr)
    assert match, done.stderr
    return datetime.fromisoformat(match.group(1)).astimezone(timezone.utc)


async def live_context(cluster) -> FormContext:
    runner = SlurmRunner(env={"SLURM_CONF": cluster.conf})
    view = ClusterView(runner, interval=5)
    try:
        snapshot = await view.snapshot()
    finally:
        await view.close()
    limits = merge_partition_limits(load_partitions(CLUSTER_PARTITIONS), snapshot.partitions)
    return FormContext(
        user_name="alice",
        server_name="",
        snapshot=snapshot,
        limits=limits,
        policy=OptionsPolicy(),
        script_settings=ScriptSettings(home_dir=home_of("alice")),
        estimator=StartEstimator(runner, "sudo -n -E -u {username}"),
    )


async def test_the_estimate_across_partitions_agrees_with_sbatch_test_only_by_hand(
    busy_cpu, slurm_cluster
):
    ctx = await live_context(slurm_cluster)
    view = await start_estimate(ctx, ONE_CPU, datetime.now(timezone.utc))
    hand = {p: by_hand(slurm_cluster.env, "alice", p) for p in PARTITIONS}
    await ctx.estimator.close()

    assert view is not None and not view.starts_now, view
    assert abs(datetime.fromisoformat(view.start) - hand["cpu"]) <= MARGIN
    sooner_by_hand = sorted(p for p in ("gpu", "debug") if hand["cpu"] - hand[p] >= MARGIN)
    assert sooner_by_hand == ["debug", "gpu"]  # what the busy cpu partition is for
    assert sorted(s.partition for s in view.sooner) == sooner_by_hand
    for suggestion in view.sooner:
        assert abs(datetime.fromisoformat(suggestion.start) - hand[suggestion.partition]) <= MARGIN
        assert suggestion.when == "would start now"
    assert view.sooner_summary.endswith(f"cpu (chosen) {view.when}") and " h" in view.when


# -- what 20 viewers cost slurmctld ------------------------------------------------------------


def rpc_count_of(env: Mapping[str, str], user: str) -> int:
    """All RPCs slurmctld served for ``user`` so far (sdiag's per-user table)."""
    out = run(env, "sdiag").stdout
    match = re.search(rf"^\s*{re.escape(user)}\s+\(\s*\d+\)\s+count:(\d+)", out, re.MULTILINE)
    return int(match.group(1)) if match else 0


def rpcs_per_estimate(env: Mapping[str, str], user: str) -> int:
    """What one ``sbatch --test-only`` costs, measured: the most of three runs by hand."""
    costs = []
    for partition in PARTITIONS:
        before = rpc_count_of(env, user)
        by_hand(env, user, partition)
        costs.append(rpc_count_of(env, user) - before)
    assert min(costs) >= 1, costs
    return max(costs)


@pytest.fixture(scope="module")
def estimate_hub(busy_cpu, slurm_cluster, hub_infra, tmp_path_factory):
    config = cluster_hub_config() + (
        f"\nc.MOSlurmSpawner.availability_refresh_interval = {REFRESH}\n"
    )
    with running_hub(tmp_path_factory.mktemp("start-sooner"), config, env=slurm_cluster.env) as hub:
        yield hub


async def viewer(hub: HubProcess, login: str, form_of: str, until: float, seen: list) -> None:
    async with httpx.AsyncClient(timeout=120) as client:
        page = await client.get(hub.hub_url("login"))
        await client.post(
            hub.hub_url("login"),
            data={"username": login, "password": "x", "_xsrf": xsrf_from_page(page.text)},
        )
        url = hub.hub_url(f"moss/form/estimate/{form_of}/")
        await asyncio.sleep(random.uniform(0, 2))  # not all at once
        while time.monotonic() < until:
            query = {**ONE_CPU, "nprocs": str(random.randint(1, 2)), "moss_tab": "simple"}
            response = await client.get(url, params=query)
            seen.append((form_of, response.status_code, response.text))
            await asyncio.sleep(random.uniform(0.5, 3))


def test_twenty_viewers_cost_one_estimate_per_partition_per_user_per_interval(
    estimate_hub, slurm_cluster
):
    env = slurm_cluster.env
    cost = {user: rpcs_per_estimate(env, user) for user in ("alice", "bob")}
    viewers = [("alice", "alice")] * 9 + [("bob", "bob")] * 9 + [("admin", "alice")] * 2
    assert len(viewers) == VIEWERS
    before = {user: rpc_count_of(env, user) for user in cost}
    started = time.monotonic()
    seen: list = []

    async def crowd() -> None:
        until = time.monotonic() + DURATION
        await asyncio.gather(*(viewer(estimate_hub, *v, until, seen) for v in viewers))

    asyncio.run(crowd())
    elapsed = time.monotonic() - started  # waiting requests end after DURATION: count them
    spent = {user: rpc_count_of(env, user) - before[user] for user in cost}

    assert [status for _, status, _ in seen if status != 200] == []
    for user in cost:
        answers = [text for form_of, _, text in seen if form_of == user]
        # the feature ran: cpu waits, and the page offers the others
        assert any("Switch to gpu" in text for text in answers), user
        # each partition's lane runs at most once per interval, from its first run on
        estimates = len(PARTITIONS) * (int(elapsed // REFRESH) + 1)
        print(f"{user}: {spent[user]} RPCs in {elapsed:.0f} s; bound {estimates * cost[user]}")
        assert spent[user] <= estimates * cost[user], (user, spent, estimates, cost)
