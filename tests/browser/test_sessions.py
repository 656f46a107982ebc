"""Your sessions in a real Chromium, with a real server in a real Slurm job.

alice runs a named server "lab"; her spawn page (for her default server) lists it. Its time left
counts down at each refresh, turns into a warning when an administrator shortens the job's time
limit with scontrol (Slurm's own end, read by the hub's poller), and Stop in the list asks for
confirmation, cancels the job through JupyterHub's REST API and updates the list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from support.axe import serious_axe_violations
from support.hub import HubProcess, running_hub
from support.page_waits import TIMEOUT_MS, log_in, open_spawn_page
from support.spawning import (
    DEBUG_OPTIONS,
    lifecycle_config,
    listed_state,
    request_spawn,
    server_model,
    slurm,
    stop_server,
    wait_for,
    wait_for_job_id,
    wait_until_ready,
)

REFRESH_SECONDS = 3
ROW = "#moss-sessions tr[data-server=lab]"
TIME_LEFT = re.compile(r"^(\d+):(\d\d):(\d\d) left$")


@pytest.fixture(scope="module")
def hub(hub_infra, slurm_cluster, tmp_path_factory) -> Iterator[HubProcess]:
    config = lifecycle_config(
        f"c.MOSlurmSpawner.availability_refresh_interval = {REFRESH_SECONDS}\n"
    )
    with running_hub(tmp_path_factory.mktemp("sessions"), config, env=slurm_cluster.env) as hub:
        yield hub


@pytest.fixture
def lab_job(hub, slurm_cluster) -> Iterator[str]:
    api = hub.api()
    response = request_spawn(api, "alice", DEBUG_OPTIONS, name="lab")
    assert response.status_code in (201, 202), response.text
    try:
        wait_until_ready(api, "alice", "lab")
        yield wait_for_job_id(api, "alice", "lab")
    finally:
        if (server_model(api, "alice", "lab") or {}).get("ready"):
            stop_server(api, "alice", "lab")


def seconds_left(page) -> int:
    text = page.locator(f"{ROW} time.moss-time-left").inner_text().strip()
    match = TIME_LEFT.match(text)
    assert match, text
    hours, minutes, seconds = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def next_refresh(page):
    return page.expect_response(
        lambda r: "/moss/form/sessions/alice/" in r.url and r.ok, timeout=TIMEOUT_MS
    )


def test_time_left_counts_down_warns_and_stop_ends_the_job(hub, page, lab_job, slurm_cluster):
    env = slurm_cluster.env
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, hub, "alice")
    open_spawn_page(page, hub)
    row = page.locator(ROW)
    expect(row).to_have_attribute("data-state", "Running")
    expect(row).to_have_attribute("data-job", lab_job)
    expect(row.locator("a", has_text="Open")).to_have_attribute("href", "/user/alice/lab/")
    first = seconds_left(page)
    assert 25 * 60 < first <= 30 * 60
    expect(row.locator("time.moss-time-left")).not_to_have_class(re.compile("text-bg-warning"))

    # the list refreshes by itself, and the time left goes down
    with next_refresh(page):
        pass
    with next_refresh(page):
        pass
    assert seconds_left(page) < first

    # an administrator shortens the job: Slurm's new end reaches the page as a warning
    slurm(env, "scontrol", "update", f"JobId={lab_job}", "TimeLimit=00:10:00")
    expect(row.locator("time.moss-time-left.text-bg-warning")).to_be_visible(timeout=60_000)
    assert seconds_left(page) <= 10 * 60
    expect(row).to_contain_text("Ends soon")

    assert serious_axe_violations(page, "#moss-sessions") == []

    # Stop asks first: dismissed, nothing is sent and the job runs on
    deletes: list[str] = []
    page.on("request", lambda r: deletes.append(r.url) if r.method == "DELETE" else None)
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.locator("button.moss-session-stop").click()
    with next_refresh(page):
        pass
    assert deletes == []
    assert listed_state(env, lab_job) == "RUNNING"

    # confirmed: JupyterHub's REST API stops the server, Slurm cancels the job, the list says so
    messages: list[str] = []

    def accept(dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    with page.expect_response(lambda r: r.request.method == "DELETE") as stop:
        row.locator("button.moss-session-stop").click()
    assert stop.value.status in (202, 204), stop.value.status
    assert stop.value.url.endswith("/hub/api/users/alice/servers/lab")
    assert messages and f"cancel Slurm job {lab_job}" in messages[0]
    expect(row).to_have_attribute("data-state", "Ended", timeout=60_000)
    expect(row).to_contain_text("CANCELLED")
    assert wait_for(
        "the job to leave the queue",
        lambda: listed_state(env, lab_job) in ("", "CANCELLED", "COMPLETED"),
        30,
    )
    expect(row.locator("button.moss-session-stop")).to_have_count(0)
    assert errors == []
