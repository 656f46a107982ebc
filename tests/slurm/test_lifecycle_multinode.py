"""On the multi-node layout: servers on other nodes, and one poller for many servers.

This module switches dev/cluster to its multi layout (nodes c1 and c2 in cpu/debug, g1 in gpu,
each its own slurmd) for its tests, and back to the single layout at the end: other tests use
that one. Switching cancels every job on the cluster.

Where the kernel allows it, dev/cluster runs each node's slurmd in a network namespace of its
own (c1 is 10.77.0.11 on a bridge, and so on; /etc/hosts says so), so a job on c1 listens on
c1's address and is unreachable through this machine's 127.0.0.1. The hub listens on the
bridge's address (``MOSS_CLUSTER_HUB_ADDR``) for the jobs to report to it. Without namespaces
every node is 127.0.0.1 and the tests still show that the hub goes through the node name
Slurm reports.
"""

from __future__ import annotations

import re
import socket
import textwrap
import time
from pathlib import Path

import pytest
from support.held_jobs import switch_layout
from support.infra import running_cluster
from support.spawning import (
    cancel,
    lifecycle_config,
    listed_state,
    new_user_token,
    request_spawn,
    server_state,
    slurm,
    user_client,
    wait_for,
    wait_for_job_id,
    wait_job_state,
    wait_until_ready,
)

pytestmark = pytest.mark.slurm

WHOLE_CPU_NODE = {"partition": "cpu", "nprocs": "8", "runtime": "1:00:00"}
ONE_CPU = {"partition": "cpu", "nprocs": "1", "runtime": "1:00:00"}
ONE_GPU = {"partition": "gpu", "nprocs": "1", "ngpus": "1", "runtime": "1:00:00"}


@pytest.fixture(scope="module")
def multi_cluster(slurm_cluster):
    switch_layout("multi")
    try:
        yield running_cluster()  # its env has the multi layout's MOSS_CLUSTER_HUB_ADDR
    finally:
        switch_layout("single")


def multi_config(cluster, extra: str = "") -> str:
    """The lifecycle config, with the hub's API where the nodes can reach it."""
    addr = cluster.env.get("MOSS_CLUSTER_HUB_ADDR", "127.0.0.1")
    return lifecycle_config(
        textwrap.dedent(
            f"""
            from urllib.parse import urlsplit as _urlsplit
            _hub_port = _urlsplit(c.JupyterHub.hub_bind_url).port
            c.JupyterHub.hub_bind_url = f"http://{addr}:{{_hub_port}}"
            """
        )
        + extra
    )


def network_namespaces() -> bool:
    return Path("/var/run/netns/moss-c1").exists()


def listening_port(hub_log: str, server: str, node: str) -> int:
    match = re.search(rf"/user/alice/{server}/ => http://{node}:(\d+)", hub_log)
    assert match, f"no route to {node} for {server}"
    return int(match.group(1))


def test_a_spawn_on_each_node_is_reached_through_the_node_name_slurm_reports(
    multi_cluster, hub_factory
):
    env = multi_cluster.env
    hub = hub_factory(extra_config=multi_config(multi_cluster), env=env)
    api = hub.api()
    servers = {"whole-a": WHOLE_CPU_NODE, "whole-b": WHOLE_CPU_NODE, "gpu": ONE_GPU}
    job_ids = []
    try:
        for name, options in servers.items():
            response = request_spawn(api, "alice", options, name)
            assert response.status_code in (201, 202), response.text
            wait_until_ready(api, "alice", name)
            job_ids.append(server_state(api, "alice", name)["job_id"])
        nodes = {name: server_state(api, "alice", name)["job_node"] for name in servers}
        assert sorted(nodes.values()) == ["c1", "c2", "g1"]
        assert nodes["gpu"] == "g1"

        token = new_user_token(api, "alice")
        for name, node in nodes.items():
            # Slurm's own word for where the job runs, and the hub's route to it
            batch_host = slurm(
                env, "squeue", "-h", "-j", job_ids[list(servers).index(name)], "-o", "%B"
            ).stdout.strip()
            assert batch_host == node
            port = listening_port(hub.log(), name, node)
            status = user_client(hub, token).get(f"user/alice/{name}/api/status")
            assert status.status_code == 200, (name, node, status.text)
            if network_namespaces():
                # The server is on the node's own address, not on this machine's loopback.
                address = socket.gethostbyname(node)
                assert address.startswith("10.77.0.")
                assert connects(address, port)
                assert not connects("127.0.0.1", port)
    finally:
        cancel(env, job_ids)


def connects(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=3).close()
    except OSError:
        return False
    return True


def rpc_count_of(env, user: str) -> int:
    """All RPCs slurmctld served for ``user`` so far (sdiag's per-user table)."""
    out = slurm(env, "sdiag").stdout
    match = re.search(rf"^\s*{re.escape(user)}\s+\(\s*\d+\)\s+count:(\d+)", out, re.MULTILINE)
    return int(match.group(1)) if match else 0


def test_ten_servers_and_five_pending_spawns_cost_slurmctld_a_few_requests_a_minute(
    multi_cluster, hub_factory
):
    """One shared poller: the controller's load does not grow with the number of servers.

    The hub's Slurm queries run as ``nobody`` (``slurm_query_prefix``), so sdiag's per-user
    count isolates them from everything else on this machine. batchspawner would run an squeue
    every 0.5 s per pending spawn (600 a minute for these 5) and one per running server per
    poll. With the defaults used here (poll_interval 30 s, pending_poll_interval 10 s), ours
    is bounded by 60/10 + 2 * 60/15 = 14 squeue a minute whatever the number of servers; each
    squeue is two RPCs (job info, partition info).
    """
    env = multi_cluster.env
    config = multi_config(
        multi_cluster,
        'c.Spawner.poll_interval = 30\nc.MOSlurmSpawner.slurm_query_prefix = "sudo -E -u nobody"\n',
    )
    hub = hub_factory(extra_config=config, env=env)
    api = hub.api()
    running = [(user, f"r{n}") for user in ("alice", "bob") for n in range(5)]
    pending = [("alice", "p0"), ("alice", "p1"), ("alice", "p2"), ("bob", "p0"), ("bob", "p1")]
    job_ids: list[str] = []
    try:
        for user, name in running:
            assert request_spawn(api, user, ONE_CPU, name).status_code in (201, 202)
        for user, name in running:
            wait_until_ready(api, user, name, timeout=300)
            job_ids.append(server_state(api, user, name)["job_id"])
        for user, name in pending:
            # 8 CPUs on one node: c1 and c2 each run some of the ten already
            assert request_spawn(api, user, WHOLE_CPU_NODE, name).status_code == 202
        for user, name in pending:
            job_ids.append(wait_for_job_id(api, user, name))
            wait_job_state(env, job_ids[-1], {"PENDING"})
        time.sleep(35)  # past pending_backoff_after: the steady state of a long queue

        before, started = rpc_count_of(env, "nobody"), time.monotonic()
        time.sleep(60)
        per_minute = (rpc_count_of(env, "nobody") - before) * 60 / (time.monotonic() - started)

        print(f"slurmctld RPCs from the hub's queries: {per_minute:.1f} per minute")
        assert per_minute <= 2 * 14 + 4
        assert all(listed_state(env, job_id) for job_id in job_ids)  # nothing lost meanwhile
    finally:
        cancel(env, job_ids)
        wait_for("the jobs to end", lambda: not any(listed_state(env, j) for j in job_ids), 60)
