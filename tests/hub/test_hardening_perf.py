"""A fragment costs the hub about what a plain hub page costs.

The spawn page's fragments are requested by every open page every few seconds, so their cost
sets how many viewers a hub can take (tests/slurm/test_load.py loads 100). They used to re-parse
the page's template on every request (about 20 ms of CPU each, 6x a plain page); this keeps
that from coming back. Medians of sequential requests from one client, so a busy machine
moves both sides alike.
"""

from __future__ import annotations

import statistics
import textwrap
import time

import pytest

pytestmark = pytest.mark.hub

ENV = {"default": {"description": "Default", "path": "/opt/moss-jobenv/bin/"}}
CONFIG = textwrap.dedent(
    f"""
    c.MOSlurmSpawner.partitions = {{
        "cpu": {{"gpu": "", "max_nprocs": 16, "max_runtime": 3600,
                 "jupyter_environments": {ENV!r}}},
        "gpu": {{"gpu": "gpu:a100:{{}}", "max_ngpus": 4, "max_nprocs": 32, "max_runtime": 3600,
                 "jupyter_environments": {ENV!r}}},
    }}
    c.MOSlurmSpawner.slurm_bin_dir = "/nonexistent-slurm/bin"
    c.JupyterHub.log_level = "WARN"
    """
)
ROUNDS = 30


def median_seconds(client, url: str) -> float:
    client.get(url)  # warm
    took = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        assert client.get(url).status_code == 200, url
        took.append(time.perf_counter() - started)
    return statistics.median(took)


def test_fragments_cost_about_what_a_hub_page_costs(hub_factory):
    hub = hub_factory(CONFIG)
    client = hub.login("alice")
    home = median_seconds(client, hub.hub_url("home"))
    fragment = hub.hub_url("moss/form/{}/alice/")
    costs = {
        "spawn page": median_seconds(client, hub.hub_url("spawn")),
        "availability": median_seconds(client, fragment.format("availability")),
        "partition": median_seconds(client, fragment.format("partition") + "?partition=gpu"),
        "body": median_seconds(client, fragment.format("body") + "?moss_tab=advanced"),
    }
    print(f"perf: /hub/home {home * 1000:.1f} ms; " + ", ".join(
        f"{k} {v * 1000:.1f} ms" for k, v in costs.items()
    ))  # fmt: skip
    for kind, seconds in costs.items():
        assert seconds <= 3 * home + 0.005, (kind, seconds, home)
