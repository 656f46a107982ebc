"""The spawn page in a real Chromium, against a real hub on the real local cluster.

What a user does: switch tabs and partitions, watch the table refresh, read the estimate, submit
from either tab (and without JavaScript), get a message for a bad value. Each test that starts a
server stops it through the REST API and makes sure its Slurm job is gone.
"""

from __future__ import annotations

import contextlib
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect
from support.axe import serious_axe_violations
from support.browser_servers import PENDING_OR_RUNNING, stop_server
from support.cluster_hub import CLUSTER_HUB_CONFIG
from support.hub import HubProcess, running_hub
from support.page_waits import (
    TIMEOUT_MS,
    fragment_answered,
    is_fragment,
    log_in,
    settled,
    stop_the_clock,
)
from support.page_waits import open_spawn_page as open_form

PAYLOAD = "<script>alert(1)</script>'\"<img src=x onerror=alert(2)>"
POLL_MS = 2000  # availability_refresh_interval of this module's hub


@pytest.fixture(scope="module")
def hub(hub_infra, slurm_cluster, tmp_path_factory) -> Iterator[HubProcess]:
    config = CLUSTER_HUB_CONFIG + (
        f"\nc.MOSlurmSpawner.availability_refresh_interval = {POLL_MS // 1000}\n"
    )
    with running_hub(tmp_path_factory.mktemp("hub"), config, env=slurm_cluster.env) as hub:
        yield hub


def open_spawn_page(page, hub: HubProcess, user: str = "alice") -> None:
    log_in(page, hub, user)
    open_form(page, hub)


def option_values(page, name: str) -> list[str]:
    return page.eval_on_selector_all(f"select[name={name}] option", "os => os.map(o => o.value)")


def next_table_refresh(page) -> None:
    """With the clock stopped: one poll period passes, and the table is answered and replaced."""
    table = page.locator("#moss-availability").element_handle()
    with page.expect_response(is_fragment("availability"), timeout=TIMEOUT_MS):
        page.clock.run_for(POLL_MS + 500)
    page.wait_for_function("table => !table.isConnected", arg=table, timeout=TIMEOUT_MS)


class HeldFragments:
    """A slow network: the tab and partition fragments wait until the test lets each through."""

    def __init__(self, page) -> None:
        self.page = page
        self.routes: list = []
        page.route(re.compile(r"/moss/form/(body|partition)/"), self.hold)

    def hold(self, route) -> None:
        self.routes.append(route)

    def release(self, fragment: str, containing: str = "") -> None:
        """Let one held request through (one the page has aborted since then goes nowhere)."""
        matches = is_fragment(fragment, containing=containing)
        for _ in range(200):  # the route handler runs when Playwright next hears from the page
            route = next((r for r in self.routes if matches(r.request)), None)
            if route is not None:
                break
            self.page.evaluate("0")
        else:
            raise AssertionError(f"no {fragment} request {containing!r} is held")
        self.routes.remove(route)
        with contextlib.suppress(PlaywrightError):
            route.continue_()


def htmx_abort_notices(errors: list[str]) -> list[str]:
    """htmx logs each request it aborts for a later one (hx-sync replace) as an error."""
    return [e for e in errors if not e.startswith(("htmx:sendAbort", "htmx:afterRequest"))]


# -- tabs, partitions, limits ------------------------------------------------------------------


def test_switching_partitions_and_tabs_changes_the_limits(hub, page, console_errors):
    open_spawn_page(page, hub)
    assert option_values(page, "nprocs") == ["1", "2", "4", "8"]
    assert page.locator("select[name=ngpus]").count() == 0

    with fragment_answered(page, "partition"):
        page.check("input[name=partition][value=gpu]")
    assert option_values(page, "ngpus") == ["0", "1", "2"]
    assert option_values(page, "runtime")[-1] == "12:00:00"
    # the swap does not take the focus away from the radio the user is on
    assert page.evaluate("document.activeElement.value") == "gpu"

    page.select_option("select[name=nprocs]", "4")
    with fragment_answered(page, "body"):
        page.click("#moss-tab-advanced")
    assert page.evaluate("document.activeElement.id") == "moss-tab-advanced"  # focus kept
    assert page.input_value("select[name=partition]") == "gpu"
    assert page.input_value("input[name=nprocs]") == "4"  # carried over
    assert page.get_attribute("input[name=ngpus]", "max") == "2"
    assert option_values(page, "partition") == ["cpu", "gpu", "debug"]

    with fragment_answered(page, "partition"):
        page.select_option("select[name=partition]", "debug")
    expect(page.locator("#moss-runtime-help")).to_contain_text("01:00:00")
    assert page.get_attribute("input[name=nprocs]", "max") == "8"

    page.fill("input[name=memory]", "2G")
    with fragment_answered(page, "body"):
        page.click("#moss-tab-simple")
    # debug is not offered on the Simple tab: its default partition is shown, and memory with it
    assert page.locator("input[name=partition]:checked").get_attribute("value") == "cpu"
    assert "memory" in page.text_content(".moss-not-in-simple")
    assert page.locator("[name=memory]").count() == 0

    with fragment_answered(page, "body"):
        page.click("#moss-reset")
    assert page.locator(".moss-not-in-simple").count() == 0
    assert page.input_value("select[name=nprocs]") == "1"
    assert console_errors == []


def test_a_change_the_moment_the_new_tab_appears_is_not_lost(hub, page, console_errors):
    open_spawn_page(page, hub, "bob")
    # The user picks a partition in the very next task after the Advanced tab is swapped in.
    # Only that swap counts: the polled availability table swaps in on its own schedule, and
    # may come first.
    page.evaluate(
        """() => {
            const pick = () => {
                const select = document.querySelector('select[name=partition]');
                if (!select) return;  // another fragment's swap: the Advanced tab is not in yet
                document.removeEventListener('htmx:afterSwap', pick);
                setTimeout(() => {
                    select.value = 'debug';
                    select.dispatchEvent(new Event('change', {bubbles: true}));
                });
            };
            document.addEventListener('htmx:afterSwap', pick);
        }"""
    )
    with fragment_answered(page, "partition", containing="partition=debug"):
        page.click("#moss-tab-advanced")
    expect(page.locator("#moss-runtime-help")).to_contain_text("01:00:00")
    assert page.input_value("select[name=partition]") == "debug"
    assert console_errors == []


def test_a_slow_tab_switch_does_not_undo_a_later_partition_choice(hub, page, console_errors):
    open_spawn_page(page, hub, "bob")
    held = HeldFragments(page)
    with page.expect_request(is_fragment("body"), timeout=TIMEOUT_MS):
        page.click("#moss-tab-advanced")
    # while the new tab is on its way, the user picks gpu on the tab still shown
    with page.expect_request(is_fragment("partition", containing="partition=gpu")):
        page.check("input[name=partition][value=gpu]")
    held.release("partition")
    held.release("body")  # the worst order: the older answer last
    settled(page)
    expect(page.locator("input[name=partition][value=gpu]")).to_be_checked()
    expect(page.locator("select[name=ngpus]")).to_be_attached()  # gpu's own controls
    assert option_values(page, "ngpus") == ["0", "1", "2"]
    assert htmx_abort_notices(console_errors) == []


def test_the_last_of_quick_partition_changes_wins_whatever_order_the_answers_come_in(
    hub, page, console_errors
):
    open_spawn_page(page, hub, "bob")
    with fragment_answered(page, "body"):
        page.click("#moss-tab-advanced")
    held = HeldFragments(page)
    with page.expect_request(is_fragment("partition", containing="partition=gpu")):
        page.select_option("select[name=partition]", "gpu")
    with page.expect_request(is_fragment("partition", containing="partition=debug")):
        page.select_option("select[name=partition]", "debug")
    with fragment_answered(page, "partition", containing="partition=debug"):
        held.release("partition", containing="partition=debug")
    held.release("partition", containing="partition=gpu")  # the older answer last
    settled(page)
    expect(page.locator("#moss-runtime-help")).to_contain_text("01:00:00")
    assert page.input_value("select[name=partition]") == "debug"
    assert htmx_abort_notices(console_errors) == []


def test_availability_table_refreshes_itself_and_pauses_while_hidden(hub, page, console_errors):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if is_fragment("availability")(r) else None)
    page.clock.install()
    open_spawn_page(page, hub)
    stop_the_clock(page)
    next_table_refresh(page)  # every 2 s
    next_table_refresh(page)
    assert page.locator("#moss-availability tbody tr").count() == 2
    assert re.match(r"Updated (just now|\d+ s ago)", page.text_content(".moss-availability-status"))

    page.evaluate(
        """() => {
            Object.defineProperty(document, 'visibilityState',
                                  {value: 'hidden', configurable: true});
            document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    hidden_from = len(requests)
    page.clock.run_for(5 * POLL_MS)  # five periods while hidden

    with page.expect_request(is_fragment("availability"), timeout=TIMEOUT_MS):
        page.evaluate(
            """() => {
                Object.defineProperty(document, 'visibilityState',
                                      {value: 'visible', configurable: true});
                document.dispatchEvent(new Event('visibilitychange'));
            }"""
        )  # back at once: the clock is stopped, so no timer sent it
    # requests are reported in order: one sent while hidden would be listed before this one
    assert len(requests) == hidden_from + 1
    assert console_errors == []


def test_table_refresh_does_not_move_the_page_or_the_focus(hub, page, console_errors):
    page.clock.install()
    open_spawn_page(page, hub)
    with fragment_answered(page, "body"):
        page.click("#moss-tab-advanced")
    stop_the_clock(page)
    page.focus("input[name=memory]")
    page.keyboard.type("1")
    top = page.evaluate("document.querySelector('#moss-availability').getBoundingClientRect().top")
    next_table_refresh(page)
    next_table_refresh(page)
    page.keyboard.type("G")
    assert page.input_value("input[name=memory]") == "1G"
    assert page.evaluate("document.activeElement.name") == "memory"
    after = page.evaluate(
        "document.querySelector('#moss-availability').getBoundingClientRect().top"
    )
    assert after == top
    assert console_errors == []


def test_estimate_is_shown_and_follows_changes(hub, page, console_errors):
    page.clock.install()
    open_spawn_page(page, hub)
    estimate = page.locator("#moss-estimate time")
    expect(estimate).to_have_text(
        re.compile(r"Would start now|Expected to start at \d\d:\d\d"), timeout=TIMEOUT_MS
    )
    stop_the_clock(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if is_fragment("estimate")(r) else None)
    page.select_option("select[name=nprocs]", "2")
    page.clock.run_for(300)
    page.select_option("select[name=nprocs]", "4")
    with page.expect_response(is_fragment("estimate"), timeout=TIMEOUT_MS):
        page.clock.run_for(1000)  # the debounce (800 ms) runs out after the last change
    with page.expect_response(is_fragment("estimate"), timeout=TIMEOUT_MS):
        page.select_option("select[name=nprocs]", "8")
        page.clock.run_for(1000)
    # debounced: one request for the two quick changes, with the last value; then the next
    assert ["nprocs=4" in url for url in requests] == [True, False]
    assert "nprocs=8" in requests[1]
    expect(estimate).to_be_visible(timeout=TIMEOUT_MS)  # shown again once answered
    assert console_errors == []


# -- submitting --------------------------------------------------------------------------------


def test_submit_from_the_simple_tab_reaches_spawn_pending(hub, page, slurm_cluster, console_errors):
    open_spawn_page(page, hub, "alice")
    with fragment_answered(page, "partition"):
        page.check("input[name=partition][value=gpu]")
    page.select_option("select[name=ngpus]", "1")
    try:
        page.click("#spawn_form button[type=submit]")
        page.wait_for_url(PENDING_OR_RUNNING, timeout=30000)
        saved = hub.api().get("users/alice").json()["servers"][""]["user_options"]
        assert (saved["partition"], saved["ngpus"]) == ("gpu", "1")
    finally:
        stop_server(hub, "alice", slurm_cluster.env)


def test_submit_from_the_advanced_tab_reaches_spawn_pending(
    hub, page, slurm_cluster, console_errors
):
    open_spawn_page(page, hub, "bob")
    with fragment_answered(page, "body"):
        page.click("#moss-tab-advanced")
    with fragment_answered(page, "partition"):
        page.select_option("select[name=partition]", "debug")
    expect(page.locator("#moss-runtime-help")).to_contain_text("01:00:00")
    page.fill("input[name=nprocs]", "2")
    page.fill("input[name=runtime]", "00:20:00")
    page.fill("input[name=memory]", "512M")
    try:
        page.click("#spawn_form button[type=submit]")
        page.wait_for_url(PENDING_OR_RUNNING, timeout=30000)
        saved = hub.api().get("users/bob").json()["servers"][""]["user_options"]
        assert (saved["partition"], saved["nprocs"], saved["memory"]) == ("debug", "2", "512M")
        assert saved["runtime"] == "00:20:00"
    finally:
        stop_server(hub, "bob", slurm_cluster.env)


def test_without_javascript_the_default_form_submits(hub, browser, slurm_cluster):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        open_spawn_page(page, hub, "alice")
        # the default partition's controls, or the user's last options: a complete form
        assert page.locator("input[name=partition]:checked, select[name=partition]").count() == 1
        assert page.locator("[name=nprocs]").count() == 1
        page.click("#spawn_form button[type=submit]")
        page.wait_for_url(PENDING_OR_RUNNING, timeout=30000)
    finally:
        stop_server(hub, "alice", slurm_cluster.env)
        context.close()


def test_bad_submission_shows_its_message_next_to_the_field(hub, page, console_errors):
    open_spawn_page(page, hub)
    with fragment_answered(page, "body"):
        page.click("#moss-tab-advanced")
    page.fill("input[name=memory]", "lots")
    page.fill("input[name=options]", "--uid=0")
    with page.expect_navigation(timeout=TIMEOUT_MS):  # to its `load`: htmx has wired the page
        page.click("#spawn_form button[type=submit]")
    assert page.text_content("#moss-memory-error").startswith("memory:")
    assert "--uid" in page.text_content("#moss-options-error")
    assert page.input_value("input[name=memory]") == "lots"  # kept as typed
    assert "is-invalid" in page.get_attribute("input[name=memory]", "class")
    assert "/hub/spawn" in page.url
    assert hub.api().get("users/alice").json()["servers"] == {}
    # the re-rendered page is live again: its fragments still work
    with fragment_answered(page, "partition"):
        page.select_option("select[name=partition]", "gpu")
    assert page.get_attribute("input[name=ngpus]", "max") == "2"
    assert [e for e in console_errors if "400" not in e] == []  # the page itself answers 400


# -- accessibility and hostile content ---------------------------------------------------------


@pytest.mark.parametrize("tab", ["simple", "advanced"])
def test_axe_finds_no_serious_violations_in_the_form(hub, page, tab, console_errors):
    open_spawn_page(page, hub)
    if tab == "advanced":
        with fragment_answered(page, "body"):
            page.click("#moss-tab-advanced")
    # our part of the page (JupyterHub's own Start button is not ours to judge)
    assert serious_axe_violations(page, "#moss-form") == []
    assert console_errors == []


def test_keyboard_alone_reaches_every_control(hub, page):
    open_spawn_page(page, hub)
    reached = set()
    for _ in range(60):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.name || document.activeElement.id"))
    assert {"moss-tab-advanced", "moss-reset", "partition", "nprocs", "runtime"} <= reached
    assert {"environment_id", "default_url"} <= reached


def test_hostile_admin_strings_and_saved_options_do_nothing(hub_factory, page, tmp_path: Path):
    config = textwrap.dedent(
        f"""
        c.MOSlurmSpawner.partitions = {{
            "cpu": {{"description": {PAYLOAD!r}, "architecture": {PAYLOAD!r}, "gpu": "",
                     "max_nprocs": 4, "max_runtime": 3600,
                     "jupyter_environments": {{
                         "default": {{"description": {PAYLOAD!r}, "path": "/opt/env/bin/"}}}}}},
        }}
        c.MOSlurmSpawner.slurm_bin_dir = "/nonexistent-slurm/bin"
        """
    )
    hostile_hub = hub_factory(config)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, hostile_hub, "alice")
    hostile_hub.api().patch(
        "users/alice/server",
        json={"user_options": {k: PAYLOAD for k in ("memory", "root_dir", "options")}},
    )
    for user, path in (("alice", "spawn"), ("admin", "spawn/alice")):
        page.goto(hostile_hub.hub_url("logout"))
        log_in(page, hostile_hub, user)
        open_form(page, hostile_hub, path)
        # the new tab and the estimate it asks for on load, both carrying the payloads
        with (
            page.expect_response(is_fragment("estimate"), timeout=TIMEOUT_MS),
            fragment_answered(page, "body"),
        ):
            page.click("#moss-tab-advanced")
        assert page.locator("#moss-form img, #moss-form script").count() == 0
        assert PAYLOAD in page.text_content("#moss-form-body")
    assert dialogs == []
