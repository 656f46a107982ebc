"""Start sooner on…, in a real Chromium, against a real hub on the real local cluster.

The cpu partition is busy (support/busy_partition.py), so a request on cpu waits about 2 h
while gpu and debug, on the same nodes, would start at once. The estimate offers them; one
click switches the partition and keeps every other value, from either tab.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from support.axe import serious_axe_violations
from support.busy_partition import busy_cpu_partition
from support.cluster_hub import CLUSTER_HUB_CONFIG
from support.hub import HubProcess, running_hub
from support.page_waits import TIMEOUT_MS, fragment_answered, log_in, open_spawn_page

pytestmark = pytest.mark.accounting

REFRESH = 2  # availability_refresh_interval (estimates keep the estimator's 5 s at least)
SWITCHES = "#moss-estimate button.moss-start-sooner-switch"


@pytest.fixture(scope="module")
def busy_cpu(slurm_cluster, accounting_cluster) -> Iterator[None]:
    with busy_cpu_partition(slurm_cluster.env):
        yield


@pytest.fixture(scope="module")
def hub(hub_infra, busy_cpu, slurm_cluster, tmp_path_factory) -> Iterator[HubProcess]:
    config = CLUSTER_HUB_CONFIG + f"\nc.MOSlurmSpawner.availability_refresh_interval = {REFRESH}\n"
    with running_hub(tmp_path_factory.mktemp("sooner"), config, env=slurm_cluster.env) as hub:
        yield hub


@pytest.fixture
def page_errors(page) -> Iterator[list[str]]:
    """Errors the page throws or logs, but htmx's notes on requests it aborted for later ones."""
    errors: list[str] = []
    aborted = ("htmx:sendAbort", "htmx:afterRequest")
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and not m.text.startswith(aborted) else None
        ),
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield errors


def estimate_for(*fragments: str):
    """A predicate: the estimate fragment asked with all of ``fragments`` in its query."""
    return lambda r: "/moss/form/estimate/" in r.url and all(f in r.url for f in fragments)


def open_form(page, hub: HubProcess) -> None:
    log_in(page, hub, "alice")
    open_spawn_page(page, hub)


def test_start_sooner_switches_the_partition_and_keeps_the_resources_simple_tab(
    hub, page, page_errors
):
    open_form(page, hub)
    assert page.is_checked("input[name=partition][value=cpu]")
    with page.expect_response(estimate_for("nprocs=2", "runtime=02%3A00%3A00"), timeout=TIMEOUT_MS):
        page.select_option("select[name=nprocs]", "2")
        page.select_option("select[name=runtime]", "02:00:00")
    # debug's limit is 1 h: only gpu takes the same request
    switches = page.locator(SWITCHES)
    expect(switches).to_have_text(["Switch to gpu"], timeout=TIMEOUT_MS)
    expect(page.locator("#moss-start-sooner-summary")).to_contain_text("gpu would start now")
    expect(page.locator("#moss-estimate time")).to_contain_text("Expected to start at")

    with fragment_answered(page, "body"):
        switches.first.click()
    # hx-vals won over the checked cpu card; every other value came along
    assert page.is_checked("input[name=partition][value=gpu]")
    assert page.input_value("select[name=nprocs]") == "2"
    assert page.input_value("select[name=runtime]") == "02:00:00"
    assert page.input_value("input[name=moss_tab]") == "simple"
    expect(page.locator("#moss-estimate time")).to_have_text("Would start now", timeout=TIMEOUT_MS)
    expect(page.locator(SWITCHES)).to_have_count(0)
    assert page_errors == []


def test_start_sooner_switches_the_partition_and_keeps_the_resources_advanced_tab(
    hub, page, page_errors
):
    open_form(page, hub)
    with fragment_answered(page, "body"):
        page.click("#moss-tab-advanced")
    assert page.input_value("select[name=partition]") == "cpu"
    with page.expect_response(
        estimate_for("nprocs=2", "memory=1G", "runtime=00%3A30%3A00"), timeout=TIMEOUT_MS
    ):
        page.fill("input[name=nprocs]", "2")
        page.fill("input[name=memory]", "1G")
        page.fill("input[name=runtime]", "00:30:00")
        page.press("input[name=runtime]", "Tab")  # the change event, as a user leaving it
    switches = page.locator(SWITCHES)
    expect(switches).to_have_text(["Switch to gpu", "Switch to debug"], timeout=TIMEOUT_MS)

    with fragment_answered(page, "body"):
        page.locator(SWITCHES, has_text="debug").click()
    assert page.input_value("select[name=partition]") == "debug"
    assert page.input_value("input[name=nprocs]") == "2"
    assert page.input_value("input[name=memory]") == "1G"
    assert page.input_value("input[name=runtime]") == "00:30:00"
    expect(page.locator("#moss-estimate time")).to_have_text("Would start now", timeout=TIMEOUT_MS)
    assert page_errors == []


def test_a_switch_to_a_partition_of_the_advanced_tab_opens_that_tab(hub, page, page_errors):
    open_form(page, hub)  # cpu, 1 CPU, 1 h: debug takes it too, but only Advanced offers it
    switch = page.locator(SWITCHES, has_text="debug")
    expect(switch).to_have_text("Switch to debug (Advanced tab)", timeout=TIMEOUT_MS)
    with fragment_answered(page, "body"):
        switch.click()
    assert page.input_value("input[name=moss_tab]") == "advanced"
    assert page.input_value("select[name=partition]") == "debug"
    assert page_errors == []


def test_axe_finds_no_serious_problems_in_start_sooner(hub, page):
    open_form(page, hub)
    expect(page.locator(SWITCHES)).to_have_count(2, timeout=TIMEOUT_MS)
    assert serious_axe_violations(page, "#moss-estimate") == []
