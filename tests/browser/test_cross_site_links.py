"""Spawn links in a real Chromium: who made the browser follow the link decides what happens.

A page on another origin links to the hub's spawn URL with options of its choosing. Chromium
sends the Fetch Metadata headers it always sends; nothing here sets them by hand. The hub runs
on http://127.0.0.1:PORT; the other page is served on http://localhost:OTHER (another site) and
on http://127.0.0.1:OTHER (the same site, another host:port). A link on the hub's own home page
(its announcement) is the control: it starts at once.
"""

from __future__ import annotations

import html
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
from support.cluster_hub import CLUSTER_HUB_CONFIG
from support.cluster_partitions import JOBENV_BIN
from support.hub import HubProcess, running_hub
from support.spawning import server_model, stop_server, wait_for

# What a hostile link asks for: a custom environment and an option of its own. The environment
# is the real job environment, so the one confirmed spawn below can start.
LINK = {
    "partition": "debug",
    "nprocs": "1",
    "runtime": "00:20:00",
    "environment_path": JOBENV_BIN,
    "options": "--comment=from-a-link",
}
LINK_COMMENT = "from-a-link"
ANNOUNCEMENT_LINK_ID = "moss-test-hub-link"
PENDING_OR_RUNNING = re.compile(r"/hub/spawn-pending/alice|/user/alice/")


class OtherSite:
    """A page on another origin whose only content is a link to the hub's spawn URL."""

    def __init__(self, target: str) -> None:
        page = (
            f'<!doctype html><title>elsewhere</title><a id="go" href="{html.escape(target)}">go</a>'
        )
        body = page.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hub(hub_infra, slurm_cluster, tmp_path_factory) -> Iterator[HubProcess]:
    link = "/hub/spawn?" + urlencode(LINK)
    announcement = f'<a id="{ANNOUNCEMENT_LINK_ID}" href="{html.escape(link)}">Start debug</a>'
    config = (
        CLUSTER_HUB_CONFIG
        + f"\nc.JupyterHub.template_vars = {{'announcement_home': {announcement!r}}}\n"
    )
    with running_hub(tmp_path_factory.mktemp("links"), config, env=slurm_cluster.env) as hub:
        yield hub


@pytest.fixture(scope="module")
def other_site(hub) -> Iterator[OtherSite]:
    site = OtherSite(hub.hub_url("spawn") + "?" + urlencode(LINK))
    yield site
    site.close()


@pytest.fixture
def alice_page(page, hub, slurm_cluster):
    page.goto(hub.hub_url("login"))
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "any")
    # The login page's own URL is under /hub/ too: wait for the navigation the click starts.
    with page.expect_navigation():
        page.click("input[type=submit], button[type=submit]")
    assert "/hub/login" not in page.url, page.url
    yield page
    stop_server(hub.api(), "alice")
    cancel_link_jobs(slurm_cluster.env)


def jobs_from_the_link(env: dict[str, str]) -> list[str]:
    """alice's jobs carrying the link's own ``--comment``: other tests' jobs never do."""
    out = subprocess.run(
        ["squeue", "-h", "-u", "alice", "-o", "%i|%k"], env=env, capture_output=True, text=True
    )
    rows = (line.split("|", 1) for line in out.stdout.splitlines() if "|" in line)
    return [job for job, comment in rows if comment == LINK_COMMENT]


def cancel_link_jobs(env: dict[str, str]) -> None:
    """Nothing a test started may outlive it (the API stop normally took care of it)."""
    jobs = jobs_from_the_link(env)
    if jobs:
        subprocess.run(["scancel", *jobs], env=env, check=False)


def not_started(server: dict | None) -> bool:
    """The model of a server with no spawn begun (the hub keeps stopped servers' records)."""
    return server is None or not (server["pending"] or server["ready"] or server["started"])


def follow_link_from(page, url: str) -> None:
    page.goto(url)
    with page.expect_navigation():
        page.click("#go")
    page.wait_for_load_state("load")


def assert_held(page, hub: HubProcess, env: dict[str, str], came_from: str) -> None:
    notice = page.locator("#moss-link-notice")
    notice.wait_for()
    assert f"This link came from {came_from}" in " ".join(notice.inner_text().split())
    # The form holds what the link asked for, on the tab that shows those fields.
    assert page.locator("#moss-form-body").get_attribute("data-moss-tab") == "advanced"
    assert page.input_value("select[name=partition]") == "debug"
    assert page.input_value("input[name=environment_path]") == JOBENV_BIN
    assert page.input_value("input[name=options]") == LINK["options"]
    # Nothing started: JupyterHub records a spawn before it answers, and Slurm has no job.
    assert not_started(server_model(hub.api(), "alice"))
    assert jobs_from_the_link(env) == []


def test_a_link_from_another_site_asks_first_and_one_click_starts_it(
    hub, other_site, alice_page, slurm_cluster
):
    page = alice_page
    follow_link_from(page, f"http://localhost:{other_site.port}/")
    assert page.url.startswith(hub.hub_url("spawn?"))
    assert_held(page, hub, slurm_cluster.env, "another site")

    page.click("#spawn_form button[type=submit]")
    page.wait_for_url(PENDING_OR_RUNNING, timeout=30000)
    # The click submitted the link's job: the check in assert_held would have seen it.
    wait_for("the confirmed link's job", lambda: jobs_from_the_link(slurm_cluster.env), 30)
    saved = server_model(hub.api(), "alice")["user_options"]
    assert saved["environment_path"].rstrip("/") == JOBENV_BIN.rstrip("/")
    assert saved["options"] == LINK["options"]


def test_a_link_from_another_host_of_the_same_site_asks_first(
    hub, other_site, alice_page, slurm_cluster
):
    follow_link_from(alice_page, f"http://127.0.0.1:{other_site.port}/")
    assert_held(alice_page, hub, slurm_cluster.env, "another site on the same domain")


def test_a_link_on_the_hubs_own_page_starts_at_once(hub, alice_page):
    page = alice_page
    page.goto(hub.hub_url("home"))
    with page.expect_navigation(url=PENDING_OR_RUNNING, timeout=30000):
        page.click(f"#{ANNOUNCEMENT_LINK_ID}")
    server = server_model(hub.api(), "alice")
    assert not not_started(server)
    assert server["user_options"]["options"] == LINK["options"]


def test_a_link_followed_before_logging_in_still_asks_after_the_login(
    hub, other_site, page, slurm_cluster
):
    """The login page forwards to its ?next= spawn URL: the link chose it, not the user."""
    try:
        follow_link_from(page, f"http://localhost:{other_site.port}/")
        page.wait_for_selector("input[name=username]")  # sent to log in first
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "any")
        with page.expect_navigation(url=re.compile(r"/hub/spawn\?")):
            page.click("input[type=submit], button[type=submit]")
        came_from = "a page on this server that is not one of the hub's own"
        assert_held(page, hub, slurm_cluster.env, came_from)
    finally:
        stop_server(hub.api(), "alice")
        cancel_link_jobs(slurm_cluster.env)
