"""Defaults and locks in a real Chromium, against a real hub on the real local cluster (issue 16).

A locked field is shown fixed and follows the partition; the page starts from the admin's
defaults; a default of saving logs can be turned off; a submission gets the lock, and the job
Slurm queues has it.
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from support.axe import serious_axe_violations
from support.browser_servers import PENDING_OR_RUNNING, job_of, stop_server
from support.cluster_hub import cluster_hub_config
from support.cluster_partitions import CLUSTER_PARTITIONS
from support.hub import HubProcess, running_hub
from support.page_waits import fragment_answered, log_in
from support.page_waits import open_spawn_page as open_form

PARTITIONS = copy.deepcopy(CLUSTER_PARTITIONS)
PARTITIONS["gpu"]["locked_fields"] = {"runtime": "0:20:00"}
SETTINGS = """
c.MOSlurmSpawner.field_defaults = {"runtime": "2:00:00", "nprocs": 2, "output": True}
c.MOSlurmSpawner.locked_fields = {"default_url": "/lab"}
"""


@pytest.fixture(scope="module")
def hub(hub_infra, slurm_cluster, tmp_path_factory) -> Iterator[HubProcess]:
    config = cluster_hub_config(PARTITIONS) + SETTINGS
    with running_hub(tmp_path_factory.mktemp("presets"), config, env=slurm_cluster.env) as hub:
        yield hub


def open_spawn_page(page, hub: HubProcess, user: str) -> None:
    log_in(page, hub, user)
    open_form(page, hub)


def test_a_locked_field_is_fixed_and_follows_the_partition(hub, page, console_errors):
    open_spawn_page(page, hub, "alice")
    # cpu: the admin's defaults, the run time free
    assert page.input_value("select[name=runtime]") == "02:00:00"
    assert page.input_value("select[name=nprocs]") == "2"
    start_page = page.locator("#moss-default-url")
    expect(start_page).to_have_attribute("readonly", "")
    expect(start_page).to_have_value("/lab")
    assert page.locator("[name=default_url]").count() == 0

    with fragment_answered(page, "partition"):
        page.check("input[name=partition][value=gpu]")
    runtime = page.locator("#moss-runtime")
    expect(runtime).to_have_value("20 min")
    expect(runtime).to_have_attribute("readonly", "")
    expect(page.locator("#moss-runtime-help")).to_have_text("Fixed by this hub's administrators.")
    assert page.locator("[name=runtime]").count() == 0  # nothing to send, nothing to forge
    assert serious_axe_violations(page, "#moss-form") == []

    with fragment_answered(page, "partition"):
        page.check("input[name=partition][value=cpu]")
    assert page.locator("select[name=runtime]").count() == 1  # free again
    assert console_errors == []


def test_a_submission_on_a_locked_partition_gets_the_lock(hub, page, slurm_cluster, console_errors):
    open_spawn_page(page, hub, "bob")
    with fragment_answered(page, "partition"):
        page.check("input[name=partition][value=gpu]")
    try:
        page.click("#spawn_form button[type=submit]")
        page.wait_for_url(PENDING_OR_RUNNING, timeout=30000)
        saved = hub.api().get("users/bob").json()["servers"][""]["user_options"]
        assert (saved["partition"], saved["runtime"]) == ("gpu", "00:20:00")
        assert saved["default_url"] == "/lab"
        job = job_of(hub, "bob")
        assert job is not None
        shown = subprocess.run(
            ["scontrol", "show", "job", "-o", job],
            env=slurm_cluster.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "TimeLimit=00:20:00" in shown.split()
    finally:
        stop_server(hub, "bob", slurm_cluster.env)


def test_a_default_of_saving_logs_can_be_turned_off(hub, page, slurm_cluster, console_errors):
    open_spawn_page(page, hub, "alice")
    with fragment_answered(page, "body"):
        page.click("#moss-tab-advanced")
    with fragment_answered(page, "partition"):
        page.select_option("select[name=partition]", "debug")
    assert page.is_checked("#moss-output")  # the admin's default: saved
    page.check("#moss-output-false")
    page.fill("input[name=runtime]", "00:10:00")
    try:
        page.click("#spawn_form button[type=submit]")
        page.wait_for_url(PENDING_OR_RUNNING, timeout=30000)
        saved = hub.api().get("users/alice").json()["servers"][""]["user_options"]
        assert (saved["output"], saved["runtime"]) == ("false", "00:10:00")
    finally:
        stop_server(hub, "alice", slurm_cluster.env)
