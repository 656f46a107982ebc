"""Load: 100 people refreshing the spawn page for 60 s while 10 servers run and 5 spawns pend.

Each simulated user is a real hub user with a login session (httpx, async, through the proxy
on loopback). For 60 s each one loops: ``/hub/home``, the spawn page, and its availability,
partition and body fragments, then waits 0.5 to 1.5 s. Meanwhile alice and bob run 10 servers
(one CPU each) and wait for 5 more (a whole node each: they pend while the others run).

Held: no error (every answer a 200); for each kind of request, the hub's p99 within 5x its own
``/hub/home`` p99 of the same run; slurmctld's load does not follow the viewers. The hub's Slurm
queries run as ``nobody`` (``slurm_query_prefix``), so sdiag's per-user count is the hub's
alone, whatever else runs on the cluster: it must stay within what the refresh and poll
intervals allow, however many pages are served.

Not loaded: the estimate fragment, which runs ``sbatch --test-only`` as each user (rate-limited
per user and partition by design; the simulated users have no Unix account). Its own sdiag bound,
20 viewers for 60 s, is tests/slurm/test_start_sooner.py's.

Ten one-CPU servers need the multi layout of dev/cluster (24 CPUs; the single node has 8): the
module switches to it if needed, as tests/slurm/test_lifecycle_multinode.py does (which cancels
every job on the cluster), and switches back afterwards.
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator

import httpx
import pytest
from support.hardening import cancel_jobs_named, cluster_config, percentile, unique_job_name
from support.hub import HubProcess, running_hub, xsrf_from_page
from support.infra import CLUSTER_SCRIPT, running_cluster
from support.spawning import request_spawn, slurm, wait_for, wait_for_job_id, wait_job_state

pytestmark = pytest.mark.slurm

USERS = 100
DURATION = 60.0
RUNNING = [(user, f"run{n}") for user in ("alice", "bob") for n in range(5)]
PENDING = [
    ("alice", "wait0"),
    ("alice", "wait1"),
    ("alice", "wait2"),
    ("bob", "wait0"),
    ("bob", "wait1"),
]
ONE_CPU = {"partition": "cpu", "nprocs": "1", "memory": "300M", "runtime": "0:20:00"}
WHOLE_NODE = {"partition": "cpu", "nprocs": "8", "runtime": "0:20:00"}
CLUSTER_REFRESH, POLL, PENDING_POLL = 30, 30, 10
KINDS = ("home", "spawn page", "availability", "partition", "body")


def layout() -> str:
    out = subprocess.run(
        [str(CLUSTER_SCRIPT), "status"], capture_output=True, text=True, timeout=60
    ).stdout
    match = re.search(r"layout: (\w+)", out)
    return match.group(1) if match else "single"


def switch_layout(name: str) -> None:
    subprocess.run(
        [str(CLUSTER_SCRIPT), "start", "--nodes", name],
        check=True,
        timeout=180,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def multi_cluster(slurm_cluster):
    before = layout()
    if before != "multi":
        switch_layout("multi")
    try:
        yield running_cluster()
    finally:
        if before != "multi":
            switch_layout(before)


@pytest.fixture(scope="module")
def load_hub(multi_cluster, hub_infra, tmp_path_factory) -> Iterator[HubProcess]:
    env = multi_cluster.env
    job_name = unique_job_name("moss-load")
    users = {f"load{n}" for n in range(USERS)} | {"alice", "bob"}
    config = cluster_config(
        f"""
        c.Authenticator.allowed_users = {sorted(users)!r}
        c.MOSlurmSpawner.job_name = {job_name!r}
        c.MOSlurmSpawner.slurm_query_prefix = "sudo -E -u nobody"
        c.MOSlurmSpawner.cluster_refresh_interval = {CLUSTER_REFRESH}
        c.MOSlurmSpawner.pending_poll_interval = {PENDING_POLL}
        c.MOSlurmSpawner.pending_backoff_after = 5
        c.Spawner.poll_interval = {POLL}
        c.Spawner.start_timeout = 300
        c.Spawner.http_timeout = 120
        c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0, "slow_stop_timeout": 0}}
        c.JupyterHub.log_level = "WARN"
        """
    )
    try:
        with running_hub(tmp_path_factory.mktemp("load-hub"), config, env=env) as hub:
            hub.job_name = job_name
            try:
                yield hub
            finally:
                api = hub.api()
                for user, name in RUNNING + PENDING:
                    api.delete(f"users/{user}/servers/{name}")
                cancel_jobs_named(env, job_name, timeout=60)
    finally:
        cancel_jobs_named(env, job_name, timeout=60)


def rpc_count_of(env, user: str) -> int:
    """All RPCs slurmctld served for ``user`` so far (sdiag's per-user table)."""
    out = slurm(env, "sdiag").stdout
    match = re.search(rf"^\s*{re.escape(user)}\s+\(\s*\d+\)\s+count:(\d+)", out, re.MULTILINE)
    return int(match.group(1)) if match else 0


def start_servers(hub: HubProcess, env) -> None:
    """10 running servers, then 5 spawns that pend (no node has 8 free CPUs)."""
    api = hub.api()
    for user, name in RUNNING:
        assert request_spawn(api, user, ONE_CPU, name).status_code in (201, 202)

    def all_ready() -> bool:
        servers = [api.get(f"users/{u}").json()["servers"].get(n) or {} for u, n in RUNNING]
        failed = [s for s in servers if s and not (s.get("ready") or s.get("pending"))]
        assert not failed, failed
        return all(s.get("ready") for s in servers)

    wait_for("10 servers to be ready", all_ready, 240, every=1.0)
    for user, name in PENDING:
        assert request_spawn(api, user, WHOLE_NODE, name).status_code in (201, 202)
    for user, name in PENDING:
        job_id = wait_for_job_id(api, user, name, timeout=60)
        wait_job_state(env, job_id, {"PENDING"})


async def simulated_user(hub: HubProcess, name: str, until: float, seen: dict) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        page = await client.get(hub.hub_url("login"))
        await client.post(
            hub.hub_url("login"),
            data={"username": name, "password": "x", "_xsrf": xsrf_from_page(page.text)},
        )
        fragment = hub.hub_url(f"moss/form/{{}}/{name}/")
        urls = {
            "home": hub.hub_url("home"),
            "spawn page": hub.hub_url("spawn"),
            "availability": fragment.format("availability"),
            "partition": fragment.format("partition") + "?partition=gpu&moss_tab=simple",
            "body": fragment.format("body") + "?moss_tab=advanced&partition=debug",
        }
        await asyncio.sleep(random.uniform(0, 1.5))  # not all at once
        while time.monotonic() < until:
            for kind, url in urls.items():
                started = time.monotonic()
                try:
                    response = await client.get(url)
                    status = response.status_code
                except httpx.HTTPError as error:
                    status = type(error).__name__
                seen[kind].append((status, time.monotonic() - started))
            await asyncio.sleep(random.uniform(0.5, 1.5))


async def crowd(hub: HubProcess, duration: float) -> dict:
    seen: dict = defaultdict(list)
    until = time.monotonic() + duration
    await asyncio.gather(*(simulated_user(hub, f"load{n}", until, seen) for n in range(USERS)))
    return seen


def test_a_hundred_viewers_with_ten_servers_and_five_pending_spawns(multi_cluster, load_hub):
    env = multi_cluster.env
    started = time.monotonic()
    start_servers(load_hub, env)
    setup_seconds = time.monotonic() - started
    rpcs_before = rpc_count_of(env, "nobody")
    window_started = time.monotonic()

    seen = asyncio.run(crowd(load_hub, DURATION))

    window = time.monotonic() - window_started
    hub_rpcs = rpc_count_of(env, "nobody") - rpcs_before
    errors = {k: [s for s, _ in v if s != 200] for k, v in seen.items()}
    p99 = {k: percentile([t for _, t in v], 0.99) for k, v in seen.items()}
    p50 = {k: percentile([t for _, t in v], 0.50) for k, v in seen.items()}
    requests = sum(len(v) for v in seen.values())
    print(
        f"load: {USERS} users, {window:.0f} s, {requests} requests ({requests / window:.0f}/s), "
        f"setup {setup_seconds:.0f} s"
    )
    for kind in KINDS:
        print(
            f"load: {kind:>12}: {len(seen[kind])} requests, errors {len(errors[kind])}, "
            f"p50 {p50[kind] * 1000:.0f} ms, p99 {p99[kind] * 1000:.0f} ms"
        )
    print(f"load: slurmctld RPCs from the hub's queries during the window: {hub_rpcs}")

    assert all(not e for e in errors.values()), {k: e[:5] for k, e in errors.items() if e}
    assert all(len(seen[kind]) >= USERS for kind in KINDS)  # every user got round at least once
    for kind in KINDS[1:]:
        assert p99[kind] <= 5 * p99["home"], (kind, p99)
    # One cluster read (sinfo: 2 RPCs, scontrol show reservation: 1) per refresh interval, one
    # squeue (about 3 RPCs) per poll of the running servers and per look at the pending ones,
    # with slack for a window that straddles them. Per page view it would be thousands.
    minutes = window / 60
    bound = (3 * 60 / CLUSTER_REFRESH + 3 * 60 / POLL + 3 * 60 / PENDING_POLL) * minutes + 12
    assert hub_rpcs <= bound, (hub_rpcs, bound)
    api = load_hub.api()
    assert all(api.get(f"users/{u}").json()["servers"][n]["ready"] for u, n in RUNNING)
    assert all(api.get(f"users/{u}").json()["servers"][n]["pending"] for u, n in PENDING)
