"""Hub configuration for tests against the local cluster, and ways to ask it for a spawn.

The partitions are dev/cluster's (see cluster_partitions.py): cpu (8 CPUs, 1 day), gpu (2 GPUs,
12 h), debug (1 h). Their limits are left to Slurm, as an admin who writes the minimum would.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
from collections.abc import Mapping
from typing import Any

import httpx

from .cluster_partitions import CLUSTER_PARTITIONS
from .hub import TYPED_IN_ADDRESS_BAR, HubProcess, xsrf_from_page


def cluster_hub_config(partitions: Mapping[str, Any] = CLUSTER_PARTITIONS) -> str:
    """Hub config lines for dev/cluster: its partitions, each job submitted as its user."""
    return textwrap.dedent(
        f"""
        c.MOSlurmSpawner.partitions = {dict(partitions)!r}
        c.MOSlurmSpawner.exec_prefix = "sudo -E -u {{username}}"
        c.Spawner.env_keep = ["PATH", "LANG", "SLURM_CONF", "JUPYTERHUB_SINGLEUSER_APP"]
        c.JupyterHub.allow_named_servers = True
        """
    )


#: Also debug's GPUs left to Slurm: the hub offers its node's, if any (they depend on the layout).
CLUSTER_HUB_CONFIG = cluster_hub_config(
    {
        **CLUSTER_PARTITIONS,
        "debug": {key: value for key, value in CLUSTER_PARTITIONS["debug"].items() if key != "gpu"},
    }
)


def spawn_via_form(
    hub: HubProcess, client: httpx.Client, options: Mapping[str, str], server: str = ""
) -> httpx.Response:
    """POST the spawn form the way a browser does: _xsrf taken from the page itself."""
    path = f"spawn/alice/{server}" if server else "spawn"
    page = client.get(hub.hub_url(path))
    page.raise_for_status()
    data = {**options, "_xsrf": xsrf_from_page(page.text)}
    return client.post(hub.hub_url(path), data=data, follow_redirects=False)


def spawn_via_query(
    hub: HubProcess, client: httpx.Client, options: Mapping[str, str], prefixed: bool = False
) -> httpx.Response:
    """GET a spawn link as if typed in the address bar (links from elsewhere wait for a click)."""
    params = {(f"opt-{k}" if prefixed else k): v for k, v in options.items()}
    return client.get(
        hub.hub_url("spawn"), params=params, headers=TYPED_IN_ADDRESS_BAR, follow_redirects=False
    )


def spawn_via_api(hub: HubProcess, user: str, options: Mapping[str, object]) -> httpx.Response:
    return hub.api().post(f"users/{user}/server", json={"user_options": dict(options)})


def sdiag_count(env: Mapping[str, str], message_type: str) -> int:
    """How many RPCs of one type slurmctld has served (sdiag's per-message-type table)."""
    out = subprocess.run(
        ["sdiag"], env=dict(env), capture_output=True, text=True, check=True, timeout=30
    ).stdout
    match = re.search(rf"^\s*{message_type}\s+\(\s*\d+\)\s+count:(\d+)", out, re.MULTILINE)
    return int(match.group(1)) if match else 0


def user_jobs(env: Mapping[str, str], user: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "-u", user, "-o", "%i"],
        env=dict(env),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return out.split()
