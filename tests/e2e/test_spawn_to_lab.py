"""From Start to JupyterLab in a real browser, on the real cluster, and back to nothing.

alice logs in through Chromium, chooses options on the spawn page and presses Start; a real
Slurm job runs jupyterhub-singleuser from the job-side environment, and JupyterLab loads at
/user/alice/lab. Stopping from the hub's home page cancels the job: squeue no longer lists it
and none of its processes is left. The same test then spawns from a URL, and a named server.
"""

from __future__ import annotations

import pytest
from support.page_waits import fragment_answered, log_in, open_spawn_page
from support.spawning import (
    assert_job_gone,
    cancel,
    job_fields,
    job_processes,
    lifecycle_config,
    listed_state,
    server_state,
    stop_from_home,
    wait_for,
    wait_for_lab,
)

pytestmark = pytest.mark.e2e

URL_SPAWN = "spawn?partition=debug&nprocs=1&runtime=0:30:00&default_url=/lab"


def choose_and_start(page, partition: str, nprocs: str) -> None:
    """Fill the spawn form by its fields' names (the page's layout may change)."""
    card = page.locator(f"input[name=partition][value={partition}]")
    if not card.is_checked():  # a new partition brings its own CPU choices: wait for them
        with fragment_answered(page, "partition"):
            card.check()
    page.locator("[name=nprocs]").first.select_option(nprocs)
    page.check("input[name=default_url][value='/lab']")
    page.get_by_role("button", name="Start", exact=True).click()


def job_of(api, name: str = "") -> str:
    return wait_for(
        "the server's job id", lambda: server_state(api, "alice", name).get("job_id"), 30
    )


def test_start_to_jupyterlab_and_stop_from_home_by_form_url_and_named_server(
    slurm_cluster, hub_factory, page
):
    env = slurm_cluster.env
    hub = hub_factory(extra_config=lifecycle_config(), env=env)
    api = hub.api()
    page.set_default_timeout(60_000)
    job_ids: list[str] = []
    try:
        log_in(page, hub)

        # 1. The spawn form: cpu partition, 2 CPUs, JupyterLab.
        open_spawn_page(page, hub)
        choose_and_start(page, "cpu", "2")
        wait_for_lab(page, "/user/alice/lab")
        job_id = job_of(api)
        job_ids.append(job_id)
        fields = job_fields(env, job_id)
        # (the first word: parse_scontrol_fields folds "AllocNode:Sid=..." into Partition)
        chosen = (fields["JobState"], fields["Partition"].split()[0], fields["NumCPUs"])
        assert chosen == ("RUNNING", "cpu", "2")
        assert fields["UserId"].startswith("alice(")
        assert job_processes(job_id)
        stop_from_home(page, hub, "#stop")
        page.wait_for_selector("#stop", state="hidden", timeout=60_000)
        assert_job_gone(env, job_id)

        # 2. A spawn from the URL's query string.
        page.goto(hub.hub_url(URL_SPAWN))
        wait_for_lab(page, "/user/alice/lab")
        job_id = job_of(api)
        job_ids.append(job_id)
        assert job_fields(env, job_id)["Partition"].split()[0] == "debug"
        stop_from_home(page, hub, "#stop")
        assert_job_gone(env, job_id)

        # 3. A named server, added from the home page.
        page.goto(hub.hub_url("home"))
        page.fill(".new-server-name", "second")
        page.click(".new-server-btn")  # JupyterHub 6 adds the row, then "start" opens the form
        with page.expect_navigation(url="**/hub/spawn/alice/second**"):
            page.click("#start-second")
        choose_and_start(page, "cpu", "1")
        wait_for_lab(page, "/user/alice/second/lab")
        job_id = job_of(api, "second")
        job_ids.append(job_id)
        assert listed_state(env, job_id) == "RUNNING"
        stop_from_home(page, hub, "#stop-second")
        assert_job_gone(env, job_id)
    finally:
        cancel(env, job_ids)
