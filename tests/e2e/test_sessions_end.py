"""How a real server's session ends without its user: idle, or at its Slurm time limit.

- The real ``jupyterhub-idle-culler``, run by the hub as a service, stops a server nobody uses:
  the job is cancelled (squeue drops it, its processes end), and the spawn page's availability
  table shows its CPUs idle again within one refresh of the shared view.
- A job that reaches its time limit is ended by Slurm: the hub notices within one poll, its log
  says that the time limit was reached, and so does the user's session list, which counted the
  time left down to it.

Both run a real JupyterLab in a real Slurm job, as alice, on the debug partition.
"""

from __future__ import annotations

import time

import httpx
import pytest
from bs4 import BeautifulSoup
from support.spawning import (
    assert_job_gone,
    cancel,
    lifecycle_config,
    listed_state,
    request_spawn,
    server_state,
    wait_for,
    wait_until_ready,
    wait_until_stopped,
)

pytestmark = pytest.mark.e2e

#: The culler's idea of idle, and how often it looks (its own options, as a site sets them).
IDLE_SECONDS = 20
CULL_EVERY = 5
#: How often the hub reads the cluster for the availability table.
REFRESH = 5
#: JupyterHub's poll of each running server (lifecycle_config's).
POLL_INTERVAL = 10
TWO_CPUS = {"partition": "debug", "nprocs": "2", "runtime": "0:30:00"}


def culler_config() -> str:
    return lifecycle_config(
        f"""
        import sys
        c.MOSlurmSpawner.cluster_refresh_interval = {REFRESH}
        c.MOSlurmSpawner.availability_refresh_interval = {REFRESH}
        c.JupyterHub.services.append({{
            "name": "idle-culler",
            "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                        "--timeout={IDLE_SECONDS}", "--cull-every={CULL_EVERY}"],
        }})
        c.JupyterHub.load_roles.append({{
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }})
        """
    )


def idle_debug_cpus(hub, client: httpx.Client) -> tuple[int, int]:
    """(idle, total) CPUs of the debug partition, as the availability table shows them."""
    answer = client.get(
        hub.hub_url("moss/form/availability/alice/"),
        params={"partition": "debug", "moss_tab": "advanced"},  # debug is Advanced-only
    )
    assert answer.status_code == 200, answer.text[:300]
    soup = BeautifulSoup(answer.text, "html.parser")
    for row in soup.select(".moss-availability-table tbody tr"):
        if row.th.get_text(strip=True) == "debug":
            idle, total = row.td.get_text(strip=True).split(" / ")
            return int(idle), int(total)
    raise AssertionError(f"no debug row in the availability table: {soup.get_text(' ')[:300]}")


def session_row(hub, client: httpx.Client):
    """alice's default server's row in her "Your sessions" list, or None."""
    answer = client.get(hub.hub_url("moss/form/sessions/alice/"))
    assert answer.status_code == 200, answer.text
    return BeautifulSoup(answer.text, "html.parser").select_one('tr[data-server=""]')


def culled_by_the_culler(hub) -> bool:
    return any(
        "DELETE /hub/api/users/alice/server" in line and "(idle-culler@" in line
        for line in hub.log().splitlines()
    )


def test_the_idle_culler_stops_a_server_and_its_cpus_show_idle_within_one_refresh(
    slurm_cluster, hub_factory
):
    env = slurm_cluster.env
    hub = hub_factory(extra_config=culler_config(), env=env)
    api, alice = hub.api(), hub.login("alice")
    before, total = wait_for(
        "the table to show the debug partition", lambda: idle_debug_cpus(hub, alice), 30
    )
    job_id = ""
    try:
        assert request_spawn(api, "alice", TWO_CPUS).status_code in (201, 202)
        ready = wait_until_ready(api, "alice")
        job_id = server_state(api, "alice")["job_id"]
        assert listed_state(env, job_id) == "RUNNING", ready
        wait_for(
            "the table to count the server's two CPUs",
            lambda: idle_debug_cpus(hub, alice)[0] <= before - 2,
            3 * REFRESH,
        )

        # Nobody uses the server: the culler stops it once it has been idle for IDLE_SECONDS.
        wait_until_stopped(api, "alice", timeout=IDLE_SECONDS + 3 * CULL_EVERY + 60)
        # JupyterHub logs the culler's DELETE once the stop has finished
        wait_for("the culler's DELETE in the hub's log", lambda: culled_by_the_culler(hub), 60)
        assert_job_gone(env, job_id)
        gone_at = time.monotonic()

        # The CPUs are idle again in the table within one refresh of the shared view (plus
        # the moment Slurm takes to count them idle after the job's end).
        wait_for(
            "the table to show the CPUs idle again",
            lambda: idle_debug_cpus(hub, alice)[0] >= before,
            2 * REFRESH + 5,
            every=0.5,
        )
        print(
            f"culler: the table showed {before}/{total} idle CPUs again "
            f"{time.monotonic() - gone_at:.1f} s after the job was gone"
        )
    finally:
        cancel(env, [job_id])


def test_a_job_at_its_time_limit_ends_and_the_hub_notices_within_one_poll(
    slurm_cluster, hub_factory
):
    env = slurm_cluster.env
    hub = hub_factory(extra_config=lifecycle_config(), env=env)
    api, alice = hub.api(), hub.login("alice")
    job_id = ""
    try:
        one_minute = {**TWO_CPUS, "nprocs": "1", "runtime": "0:01:00"}
        assert request_spawn(api, "alice", one_minute).status_code in (201, 202)
        wait_until_ready(api, "alice")
        job_id = server_state(api, "alice")["job_id"]
        row = wait_for(
            "the session list to show the job's time left",
            lambda: (
                r if (r := session_row(hub, alice)) is not None and r.select_one("time") else None
            ),
            30,
        )
        assert row["data-job"] == job_id and row["data-state"] == "Running"
        left = row.select_one("time.moss-time-left")
        assert left.get_text().startswith("0:00:") and "text-bg-warning" in left["class"]

        # Slurm ends it at its limit (it checks limits every 30 s, then KillWait)
        wait_for(f"Slurm to end job {job_id}", lambda: listed_state(env, job_id) != "RUNNING", 150)
        ended_at = time.monotonic()
        wait_until_stopped(api, "alice", timeout=2 * POLL_INTERVAL + 5)
        noticed = time.monotonic() - ended_at
        print(f"time limit: the hub noticed {noticed:.1f} s after Slurm ended the job")
        ended_lines = [
            line for line in hub.log().splitlines() if f"Job {job_id} of alice has ended" in line
        ]
        assert ended_lines, hub.log()[-3000:]
        assert "TIMEOUT (time limit reached" in ended_lines[-1], ended_lines
        row = session_row(hub, alice)
        assert row is not None and row["data-state"] == "Ended", row
        assert f"Job {job_id}: TIMEOUT (time limit reached" in row.get_text(" ", strip=True)
    finally:
        cancel(env, [job_id])
