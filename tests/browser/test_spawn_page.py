"""The spawn page in a real Chromium, against a real hub on the real local cluster.

What a user does: switch tabs and partitions, watch the table refresh, read the estimate, submit
from either tab (and without JavaScript), get a message for a bad value. Each test that starts a
server stops it through the REST API and makes sure its Slurm job is gone.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cluster_hub import CLUSTER_HUB_CONFIG
from support.hub import HubProcess, running_hub
from support.infra import REPO

AXE = REPO / "dev" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
PAYLOAD = "<script>alert(1)</script>'\"<img src=x onerror=alert(2)>"
PENDING_OR_RUNNING = re.compile(r"/hub/spawn-pending/(alice|bob)|/user/(alice|bob)/")


@pytest.fixture(scope="module")
def hub(hub_infra, slurm_cluster, tmp_path_factory) -> Iterator[HubProcess]:
    config = CLUSTER_HUB_CONFIG + "\nc.MOSlurmSpawner.availability_refresh_interval = 2\n"
    with running_hub(tmp_path_factory.mktemp("hub"), config, env=slurm_cluster.env) as hub:
        yield hub


@pytest.fixture
def console_errors(page) -> Iterator[list[str]]:
    """Errors the page logs or throws; each test asserts there are none."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield errors


def log_in(page, hub: HubProcess, user: str = "alice") -> None:
    page.goto(hub.hub_url("login"))
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", "any")
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url("**/hub/**")


def open_spawn_page(page, hub: HubProcess, user: str = "alice") -> None:
    log_in(page, hub, user)
    page.goto(hub.hub_url("spawn"))
    page.wait_for_selector("#moss-form")
    page.wait_for_load_state("networkidle")


def option_values(page, name: str) -> list[str]:
    return page.eval_on_selector_all(f"select[name={name}] option", "os => os.map(o => o.value)")


def job_of(hub: HubProcess, user: str, timeout: float = 15) -> str | None:
    """The Slurm job id of ``user``'s default server, from its saved state."""
    api = hub.api()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = api.get(f"users/{user}").json().get("servers", {}).get("")
        state = (server or {}).get("state") or {}
        job = next((str(v) for k, v in state.items() if "job" in k and str(v).isdigit()), None)
        if job:
            return job
        time.sleep(0.5)
    return None


def stop_server(hub: HubProcess, user: str, env: dict[str, str]) -> None:
    """Stop the server through the REST API; cancel its job if Slurm still has it."""
    job = job_of(hub, user)
    api = hub.api()
    api.delete(f"users/{user}/server")
    deadline = time.monotonic() + 60
    while api.get(f"users/{user}").json().get("servers") and time.monotonic() < deadline:
        time.sleep(0.5)
    if job:
        queued = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T"], env=env, capture_output=True, text=True
        ).stdout.strip()
        if queued:
            subprocess.run(["scancel", job], env=env, check=False)


# -- tabs, partitions, limits ------------------------------------------------------------------


def test_switching_partitions_and_tabs_changes_the_limits(hub, page, console_errors):
    open_spawn_page(page, hub)
    assert option_values(page, "nprocs") == ["1", "2", "4", "8"]
    assert page.locator("select[name=ngpus]").count() == 0

    page.check("input[name=partition][value=gpu]")
    page.wait_for_selector("select[name=ngpus]")
    assert option_values(page, "ngpus") == ["0", "1", "2"]
    assert option_values(page, "runtime")[-1] == "12:00:00"
    # the swap does not take the focus away from the radio the user is on
    assert page.evaluate("document.activeElement.value") == "gpu"

    page.select_option("select[name=nprocs]", "4")
    page.click("#moss-tab-advanced")
    page.wait_for_selector("select[name=partition]")
    assert page.evaluate("document.activeElement.id") == "moss-tab-advanced"  # focus kept
    assert page.input_value("select[name=partition]") == "gpu"
    assert page.input_value("input[name=nprocs]") == "4"  # carried over
    assert page.get_attribute("input[name=ngpus]", "max") == "2"
    assert option_values(page, "partition") == ["cpu", "gpu", "debug"]

    page.select_option("select[name=partition]", "debug")
    page.wait_for_function(
        "document.querySelector('#moss-runtime-help').textContent.includes('01:00:00')"
    )
    assert page.get_attribute("input[name=nprocs]", "max") == "8"

    page.fill("input[name=memory]", "2G")
    page.click("#moss-tab-simple")
    page.wait_for_selector("input[name=partition][type=radio]")
    # debug is not offered on the Simple tab: its default partition is shown, and memory with it
    assert page.locator("input[name=partition]:checked").get_attribute("value") == "cpu"
    assert "memory" in page.text_content(".moss-not-in-simple")
    assert page.locator("[name=memory]").count() == 0

    page.click("#moss-reset")
    page.wait_for_selector(".moss-not-in-simple", state="detached")
    assert page.input_value("select[name=nprocs]") == "1"
    assert console_errors == []


def test_availability_table_refreshes_itself_and_pauses_while_hidden(hub, page, console_errors):
    requests: list[str] = []
    page.on(
        "request", lambda r: requests.append(r.url) if "/moss/form/availability/" in r.url else None
    )
    open_spawn_page(page, hub)
    page.wait_for_timeout(5000)
    assert len(requests) >= 2  # every 2 s
    assert page.locator("#moss-availability tbody tr").count() == 2
    assert re.match(r"Updated (just now|\d+ s ago)", page.text_content(".moss-availability-status"))

    page.evaluate(
        """() => {
            Object.defineProperty(document, 'visibilityState',
                                  {value: 'hidden', configurable: true});
            document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    page.wait_for_timeout(500)
    hidden_from = len(requests)
    page.wait_for_timeout(4500)
    assert len(requests) == hidden_from  # no polling while hidden

    page.evaluate(
        """() => {
            Object.defineProperty(document, 'visibilityState',
                                  {value: 'visible', configurable: true});
            document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    page.wait_for_timeout(500)
    assert len(requests) > hidden_from  # back at once
    assert console_errors == []


def test_table_refresh_does_not_move_the_page_or_the_focus(hub, page, console_errors):
    open_spawn_page(page, hub)
    page.click("#moss-tab-advanced")
    page.wait_for_selector("input[name=memory]")
    page.focus("input[name=memory]")
    page.keyboard.type("1")
    top = page.evaluate("document.querySelector('#moss-availability').getBoundingClientRect().top")
    page.wait_for_timeout(4500)  # two refreshes
    page.keyboard.type("G")
    assert page.input_value("input[name=memory]") == "1G"
    assert page.evaluate("document.activeElement.name") == "memory"
    after = page.evaluate(
        "document.querySelector('#moss-availability').getBoundingClientRect().top"
    )
    assert after == top
    assert console_errors == []


def test_estimate_is_shown_and_follows_changes(hub, page, console_errors):
    open_spawn_page(page, hub)
    estimate = page.locator("#moss-estimate time")
    estimate.wait_for(timeout=15000)
    assert re.match(r"Would start now|Expected to start at \d\d:\d\d", estimate.text_content())
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/form/estimate/" in r.url else None)
    page.select_option("select[name=nprocs]", "2")
    page.wait_for_timeout(300)
    page.select_option("select[name=nprocs]", "4")
    page.wait_for_timeout(2000)
    assert len(requests) == 1  # debounced: one request for two quick changes
    assert "nprocs=4" in requests[0]
    assert console_errors == []


# -- submitting --------------------------------------------------------------------------------


def test_submit_from_the_simple_tab_reaches_spawn_pending(hub, page, slurm_cluster, console_errors):
    open_spawn_page(page, hub, "alice")
    page.check("input[name=partition][value=gpu]")
    page.wait_for_selector("select[name=ngpus]")
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
    page.click("#moss-tab-advanced")
    page.wait_for_selector("select[name=partition]")
    page.select_option("select[name=partition]", "debug")
    page.wait_for_function(
        "document.querySelector('#moss-runtime-help').textContent.includes('01:00:00')"
    )
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
    page.click("#moss-tab-advanced")
    page.wait_for_selector("input[name=memory]")
    page.fill("input[name=memory]", "lots")
    page.fill("input[name=options]", "--uid=0")
    page.click("#spawn_form button[type=submit]")
    page.wait_for_selector("#moss-memory-error")
    assert page.text_content("#moss-memory-error").startswith("memory:")
    assert "--uid" in page.text_content("#moss-options-error")
    assert page.input_value("input[name=memory]") == "lots"  # kept as typed
    assert "is-invalid" in page.get_attribute("input[name=memory]", "class")
    assert "/hub/spawn" in page.url
    assert hub.api().get("users/alice").json()["servers"] == {}
    # the re-rendered page is live again: its fragments still work
    page.select_option("select[name=partition]", "gpu")
    page.wait_for_selector("input[name=ngpus]")
    assert [e for e in console_errors if "400" not in e] == []  # the page itself answers 400


# -- accessibility and hostile content ---------------------------------------------------------


@pytest.mark.parametrize("tab", ["simple", "advanced"])
def test_axe_finds_no_serious_violations_in_the_form(hub, page, tab, console_errors):
    open_spawn_page(page, hub)
    if tab == "advanced":
        page.click("#moss-tab-advanced")
        page.wait_for_selector("select[name=partition]")
    page.add_script_tag(path=str(AXE))
    # our part of the page (JupyterHub's own Start button is not ours to judge)
    result = page.evaluate("async () => await axe.run('#moss-form')")
    serious = [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []
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
        page.goto(hostile_hub.hub_url(path))
        page.wait_for_selector("#moss-form")
        page.click("#moss-tab-advanced")
        page.wait_for_selector("select[name=partition]")
        page.wait_for_timeout(1000)
        assert page.locator("#moss-form img, #moss-form script").count() == 0
        assert PAYLOAD in page.text_content("#moss-form-body")
    assert dialogs == []
