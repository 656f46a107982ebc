"""Your sessions and the admins' jobs page, against real jobs on the real cluster.

alice runs a default server on debug and a named one that waits behind bob's job holding a
CPU of the node. What the spawn page's "Your sessions" fragment and the admins' page say is
checked against squeue run here by hand: node, state, job, the end Slurm set (time left). Then
who may see them, sorting, and the row of a server whose job was cancelled.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from bs4 import BeautifulSoup
from support.spawning import (
    DEBUG_OPTIONS,
    WHOLE_NODE_OPTIONS,
    blocker,
    cancel,
    lifecycle_config,
    request_spawn,
    server_model,
    slurm,
    stop_server,
    wait_for,
    wait_for_job_id,
    wait_until_ready,
    wait_until_stopped,
)

pytestmark = pytest.mark.slurm


@pytest.fixture
def cluster_hub(slurm_cluster, hub_factory):
    extra = "c.MOSlurmSpawner.session_warning_minutes = 45\n"
    return hub_factory(extra_config=lifecycle_config(extra), env=slurm_cluster.env)


def squeue_fields(env, job_id: str) -> dict[str, str]:
    out = slurm(env, "squeue", "-h", "-j", job_id, "-o", "%T|%B|%e|%r|%P").stdout.strip()
    state, node, end, reason, partition = out.split("|")
    return {"state": state, "node": node, "end": end, "reason": reason, "partition": partition}


def rows_of(html: str) -> dict[str, dict[str, object]]:
    """Each row by server name: its cells' texts and the time-left element."""
    soup = BeautifulSoup(html, "html.parser")
    rows = {}
    for tr in soup.select("tbody tr[data-server]"):
        left = tr.select_one("time.moss-time-left")
        rows[str(tr["data-server"])] = {
            "state": str(tr["data-state"]),
            "job": str(tr["data-job"]),
            "cells": [cell.get_text(" ", strip=True) for cell in tr.find_all(["th", "td"])],
            "where": tr.select_one(".moss-session-where").get_text(" ", strip=True),
            "resources": tr.select_one(".moss-session-resources").get_text(" ", strip=True),
            "ends": left["datetime"] if left else "",
            "left": left.get_text(strip=True) if left else "",
            "warning": bool(left and "text-bg-warning" in left.get("class", [])),
            "stop": tr.select_one("button.moss-session-stop"),
            "open": tr.select_one("a[href]"),
            "user": str(tr.get("data-user", "")),
        }
    return rows


def slurm_end(text: str) -> datetime:
    # squeue prints the controller's local time, as the hub's clock does
    return datetime.fromisoformat(text).astimezone()


def test_sessions_and_jobs_page_say_what_squeue_says(slurm_cluster, cluster_hub):
    hub, env = cluster_hub, slurm_cluster.env
    api = hub.api()
    alice, bob, admin = hub.login("alice"), hub.login("bob"), hub.login("admin")
    hold = blocker(env, "debug", "bob")
    jobs = [hold]
    try:
        assert request_spawn(api, "alice", DEBUG_OPTIONS).status_code in (201, 202)
        wait_until_ready(api, "alice")
        running = wait_for_job_id(api, "alice")
        jobs.append(running)
        response = request_spawn(api, "alice", WHOLE_NODE_OPTIONS, name="big")
        assert response.status_code in (201, 202), response.text
        queued = wait_for_job_id(api, "alice", "big")
        jobs.append(queued)
        wait_for(
            "big to pend with a reason",
            lambda: squeue_fields(env, queued)["reason"] not in ("None", ""),
            30,
        )

        # -- alice's own list, against squeue -----------------------------------------------
        def alice_rows():
            page = alice.get(hub.hub_url("moss/form/sessions/alice/"))
            assert page.status_code == 200, page.text
            return rows_of(page.text)

        rows = wait_for(
            "both servers listed as Slurm has them",
            lambda: (
                r
                if {"", "big"} <= set(r := alice_rows())
                and r[""]["state"] == "Running"
                and r["big"]["state"] == "Queued"
                and r[""]["ends"]
                else None
            ),
            60,
        )
        slurm_running, slurm_queued = squeue_fields(env, running), squeue_fields(env, queued)
        default = rows[""]
        assert default["job"] == running
        assert default["where"] == f"debug on {slurm_running['node']}"
        assert default["resources"] == "1 CPU default memory"
        # the end is Slurm's (start + the 30 min asked for), and time left counts towards it
        assert slurm_end(str(default["ends"])) == slurm_end(slurm_running["end"])
        hours, minutes, seconds = (int(p) for p in str(default["left"]).split()[0].split(":"))
        left = timedelta(hours=hours, minutes=minutes, seconds=seconds)
        assert timedelta(minutes=25) < left <= timedelta(minutes=30)
        assert default["warning"], "30 min left is under the 45 min warning configured"
        assert default["open"] is not None and default["stop"] is not None
        assert default["stop"]["hx-delete"] == "/hub/api/users/alice/server"
        big = rows["big"]
        assert big["job"] == queued and slurm_queued["state"] == "PENDING"
        assert slurm_queued["reason"] in " ".join(big["cells"])
        assert big["open"] is None, "a queued server has nothing to open"
        assert big["stop"]["hx-delete"] == "/hub/api/users/alice/servers/big"

        # -- who may see them ---------------------------------------------------------------
        refused = bob.get(hub.hub_url("moss/form/sessions/alice/"), follow_redirects=False)
        assert refused.status_code in (403, 404)
        assert running not in refused.text
        seen_by_admin = admin.get(hub.hub_url("moss/form/sessions/alice/"))
        assert seen_by_admin.status_code == 200 and set(rows_of(seen_by_admin.text)) >= {"", "big"}
        assert bob.get(hub.hub_url("moss/jobs"), follow_redirects=False).status_code == 403
        anonymous = hub.hub_url("moss/jobs/table")
        with httpx.Client(timeout=10) as nobody:
            assert nobody.get(anonymous).status_code == 403

        # -- the admins' page: every server of the hub, sortable ----------------------------
        page = admin.get(hub.hub_url("moss/jobs"))
        assert page.status_code == 200 and "Slurm jobs of this hub" in page.text
        table = admin.get(hub.hub_url("moss/jobs/table"), params={"sort": "job", "order": "desc"})
        soup = BeautifulSoup(table.text, "html.parser")
        listed = [
            (tr["data-user"], tr["data-job"], tr["data-state"]) for tr in soup.select("tbody tr")
        ]
        assert [job for _, job, _ in listed] == sorted([running, queued], key=int, reverse=True)
        assert {(user, job) for user, job, _ in listed} == {("alice", running), ("alice", queued)}
        assert soup.select_one("th[aria-sort=descending] button")["data-sort"] == "job"
        hostile = admin.get(hub.hub_url("moss/jobs/table"), params={"sort": "<x>", "order": "?"})
        assert hostile.status_code == 200 and "<x>" not in hostile.text

        # -- a server whose job is cancelled says so once the hub notices ------------------
        stop_server(api, "alice", "big")
        rows = wait_for(
            "big listed as ended",
            lambda: r if (r := alice_rows()).get("big", {}).get("state") == "Ended" else None,
            60,
        )
        assert "CANCELLED" in " ".join(rows["big"]["cells"])
        assert rows["big"]["stop"] is None
    finally:
        for name in ("big", ""):
            if server_model(api, "alice", name) is not None:
                stop_server(api, "alice", name)
                wait_until_stopped(api, "alice", name)
        cancel(env, jobs)
