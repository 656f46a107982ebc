"""Accounts and QOS on the spawn page, in a real Chromium, on the cluster with slurmdbd.

alice charges physics (default) or chemistry. Choosing an account changes the QOS choices and the
limits shown; choosing a QOS changes the limits, and the page says which one sets them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from support.axe import serious_axe_violations
from support.cluster_hub import CLUSTER_HUB_CONFIG
from support.hub import HubProcess, running_hub
from support.page_waits import fragment_answered, log_in, open_spawn_page

pytestmark = pytest.mark.accounting


@pytest.fixture(scope="module")
def hub(hub_infra, accounting_cluster, slurm_cluster, tmp_path_factory) -> Iterator[HubProcess]:
    with running_hub(
        tmp_path_factory.mktemp("accounts"), CLUSTER_HUB_CONFIG, env=slurm_cluster.env
    ) as hub:
        yield hub


def option_values(page, name: str) -> list[str]:
    return page.eval_on_selector_all(f"select[name={name}] option", "os => os.map(o => o.value)")


def advanced_form(page, hub: HubProcess) -> None:
    log_in(page, hub, "alice")
    open_spawn_page(page, hub)
    with fragment_answered(page, "body"):
        page.click("#moss-tab-advanced")


def test_choosing_an_account_changes_the_qos_choices_and_the_limits(hub, page):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    advanced_form(page, hub)
    assert option_values(page, "account") == ["physics", "chemistry"]
    assert page.input_value("select[name=account]") == "physics"
    assert option_values(page, "qos") == ["long", "normal", "short"]
    assert page.input_value("select[name=qos]") == "normal"
    assert page.get_attribute("input[name=nprocs]", "max") == "8"

    with fragment_answered(page, "partition"):
        page.select_option("select[name=qos]", "short")
    expect(page.locator("#moss-runtime-help")).to_contain_text("at most 02:00:00 (QOS short)")
    assert page.get_attribute("input[name=nprocs]", "max") == "4"
    expect(page.locator("#moss-nprocs-help")).to_contain_text("(QOS short)")

    page.focus("select[name=account]")  # as a keyboard or a click would leave it
    with fragment_answered(page, "partition"):
        page.select_option("select[name=account]", "chemistry")
    assert option_values(page, "qos") == ["gpu", "long", "normal"]
    # short is not chemistry's: the QOS falls back to the association's default
    assert page.input_value("select[name=qos]") == "normal"
    expect(page.locator("#moss-runtime-help")).to_contain_text(
        "at most 08:00:00 (account chemistry)"
    )
    assert page.get_attribute("input[name=nprocs]", "max") == "6"
    # the focus stays on the control the user just used
    assert page.evaluate("document.activeElement.name") == "account"
    assert errors == []


def test_axe_finds_no_serious_violations_in_the_account_choices(hub, page):
    advanced_form(page, hub)
    assert serious_axe_violations(page, ".moss-charge") == []
