"""From Start to JupyterLab, charged to an account that is not the user's default.

alice's default account is physics; she chooses chemistry on the spawn page, and the real Slurm
job that runs her JupyterLab is charged to it (``scontrol show job``), with the QOS the page
chose. Stopping from the hub's home page cancels the job.
"""

from __future__ import annotations

import pytest
from support.page_waits import fragment_answered, log_in, open_spawn_page
from support.spawning import (
    assert_job_gone,
    cancel,
    job_fields,
    lifecycle_config,
    server_state,
    stop_from_home,
    wait_for,
    wait_for_lab,
)

pytestmark = [pytest.mark.e2e, pytest.mark.accounting]


def test_a_spawn_to_jupyterlab_charged_to_a_non_default_account(
    accounting_cluster, slurm_cluster, hub_factory, page
):
    env = slurm_cluster.env
    hub = hub_factory(extra_config=lifecycle_config(), env=env)
    api = hub.api()
    page.set_default_timeout(60_000)
    job_ids: list[str] = []
    try:
        log_in(page, hub)
        open_spawn_page(page, hub)
        assert page.input_value("select[name=account]") == "physics"
        with fragment_answered(page, "partition"):
            page.select_option("select[name=account]", "chemistry")
        page.locator("[name=nprocs]").first.select_option("2")
        page.check("input[name=default_url][value='/lab']")
        page.get_by_role("button", name="Start", exact=True).click()
        wait_for_lab(page, "/user/alice/lab")

        job_id = wait_for(
            "the server's job id", lambda: server_state(api, "alice").get("job_id"), 30
        )
        job_ids.append(job_id)
        fields = job_fields(env, job_id)
        assert fields["JobState"] == "RUNNING"
        assert fields["Account"] == "chemistry"
        assert fields["QOS"] == "normal"
        assert fields["UserId"].startswith("alice(")

        stop_from_home(page, hub, "#stop")
        page.wait_for_selector("#stop", state="hidden", timeout=60_000)
        assert_job_gone(env, job_id)
    finally:
        cancel(env, job_ids)
