"""Spawn links: the browser's Fetch Metadata decides whether a query spawn starts or asks first.

A real hub whose Slurm commands do not exist: nothing here may start a server, so none of these
requests can reach Slurm, and the server model proves no spawn began. (The spawns that do start,
and the click that confirms a held link, run on the real cluster in tests/slurm and in Chromium
in tests/browser.)
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import httpx
import pytest
from bs4 import BeautifulSoup
from support.hub import HubProcess, running_hub, xsrf_from_page

ENV = {"default": {"description": "Default", "path": "/opt/moss-jobenv/bin/"}}
CONFIG = textwrap.dedent(
    f"""
    c.MOSlurmSpawner.partitions = {{
        "cpu": {{"description": "CPU nodes", "gpu": "", "max_nprocs": 16,
                 "max_runtime": 4 * 3600, "jupyter_environments": {ENV!r}}},
        "debug": {{"description": "Debugging", "gpu": "", "max_nprocs": 4, "simple": False,
                   "max_runtime": 3600, "jupyter_environments": {ENV!r}}},
    }}
    c.MOSlurmSpawner.slurm_bin_dir = "/nonexistent-slurm/bin"
    c.JupyterHub.allow_named_servers = True
    """
)
# What an attacker's link asks for: their own "Jupyter" and mail about the job to them.
HOSTILE_LINK = {
    "partition": "debug",
    "nprocs": "2",
    "runtime": "00:30:00",
    "environment_path": "/home/mallory/evil/bin",
    "options": "--mail-type=ALL --comment=hello",
}


def fetch_metadata(site: str | None, dest: str = "document") -> dict[str, str]:
    if site is None:
        return {}
    return {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": dest}


# (headers the browser sends, the note's "This link came from …")
HELD = [
    pytest.param(
        {**fetch_metadata("cross-site"), "Referer": "https://evil.example/"},
        "another site",
        id="cross-site",
    ),
    pytest.param(
        {**fetch_metadata("same-site"), "Referer": "http://127.0.0.1:1/"},
        "another site on the same domain",
        id="same-site-other-host",
    ),
    pytest.param(
        {**fetch_metadata("same-origin"), "Referer": "REPLACE/user/mallory/files/x.html"},
        "a page on this server that is not one of the hub's own",
        id="same-origin-user-server-page",
    ),
    pytest.param(
        {**fetch_metadata("same-origin"), "Referer": "REPLACE/hub/login?next=%2Fhub%2Fspawn"},
        "a page on this server that is not one of the hub's own",
        id="same-origin-login-forwarding-next",
    ),
    pytest.param(
        fetch_metadata("cross-site", dest="iframe"),
        "a page that embeds or fetches the hub's pages",
        id="cross-site-iframe",
    ),
    pytest.param(
        fetch_metadata(None),
        "a browser or program that does not say where its links come from",
        id="no-fetch-metadata",
    ),
]


@pytest.fixture(scope="module")
def hub(hub_infra, tmp_path_factory) -> Iterator[HubProcess]:
    with running_hub(tmp_path_factory.mktemp("links"), CONFIG) as hub:
        yield hub


@pytest.fixture(scope="module")
def alice(hub) -> httpx.Client:
    return hub.login("alice")


def server_of(hub: HubProcess, user: str = "alice", name: str = "") -> dict | None:
    return hub.api().get(f"users/{user}").json()["servers"].get(name)


def follow_link(hub, client, query, headers, path="spawn") -> httpx.Response:
    headers = {
        k: v.replace("REPLACE/", hub.url) if k == "Referer" else v for k, v in headers.items()
    }
    return client.get(hub.hub_url(path), params=query, headers=headers, follow_redirects=False)


def soup_of(response: httpx.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


@pytest.mark.parametrize(("headers", "came_from"), HELD)
def test_a_link_from_elsewhere_shows_the_filled_form_and_starts_nothing(
    hub, alice, headers, came_from
):
    response = follow_link(hub, alice, HOSTILE_LINK, headers)

    assert response.status_code == 200, response.text[:1000]
    soup = soup_of(response)
    notice = soup.select_one("#moss-link-notice")
    assert notice is not None, response.text[:3000]
    assert f"This link came from {came_from}" in " ".join(notice.text.split())
    # The form shows what the link asks for, on the tab that has those fields.
    assert soup.select_one("#moss-form-body")["data-moss-tab"] == "advanced"
    assert soup.select_one("select[name=partition] option[selected]")["value"] == "debug"
    assert (
        soup.select_one("input[name=environment_path]")["value"] == HOSTILE_LINK["environment_path"]
    )
    assert soup.select_one("input[name=options]")["value"] == HOSTILE_LINK["options"]
    assert server_of(hub) is None  # no spawn began
    assert "held for the user to confirm" in hub.log()


def test_the_jupyterhub_6_opt_prefix_is_held_too(hub, alice):
    query = {f"opt-{k}": v for k, v in HOSTILE_LINK.items()}
    response = follow_link(hub, alice, query, fetch_metadata("cross-site"))
    assert response.status_code == 200
    assert soup_of(response).select_one("#moss-link-notice") is not None
    assert (
        soup_of(response).select_one("input[name=environment_path]")["value"]
        == (HOSTILE_LINK["environment_path"])
    )
    assert server_of(hub) is None


def test_a_held_link_is_checked_and_its_messages_name_the_fields(hub, alice):
    bad = {**HOSTILE_LINK, "nprocs": "64", "options": "--uid=0"}
    response = follow_link(hub, alice, bad, fetch_metadata("cross-site"))
    assert response.status_code == 200
    soup = soup_of(response)
    assert soup.select_one("#moss-link-notice") is not None
    text = " ".join(soup.text.split())
    assert "nprocs:" in text and "options:" in text, text[:3000]
    assert soup.select_one("input[name=nprocs]")["aria-invalid"] == "true"
    assert server_of(hub) is None


def test_a_held_link_for_a_named_server_starts_nothing(hub, alice):
    response = follow_link(hub, alice, HOSTILE_LINK, fetch_metadata("cross-site"), "spawn/alice/w")
    assert response.status_code == 200
    assert soup_of(response).select_one("#moss-link-notice") is not None
    assert server_of(hub, name="w") is None


def test_the_held_form_posts_to_the_spawn_page_with_its_xsrf_token(hub, alice):
    """One click on Start is a POST that JupyterHub checks for the XSRF token."""
    response = follow_link(hub, alice, HOSTILE_LINK, fetch_metadata("cross-site"))
    form = soup_of(response).select_one("form#spawn_form, form")
    assert form is not None and form.get("method", "").lower() == "post"
    assert xsrf_from_page(response.text)
    # The same POST without the token is refused by JupyterHub: a link cannot make it.
    forged = alice.post(hub.hub_url("spawn"), data=HOSTILE_LINK, follow_redirects=False)
    assert forged.status_code == 403
    assert server_of(hub) is None


def test_a_link_without_options_is_just_the_form(hub, alice):
    response = follow_link(hub, alice, {"next": "/hub/home"}, fetch_metadata("cross-site"))
    assert response.status_code == 200
    assert soup_of(response).select_one("#moss-link-notice") is None


def test_a_spawn_link_on_the_hubs_own_pages_is_not_held(hub, alice):
    """Same-origin from a hub page: the hub submits at once (and, with no Slurm here, fails)."""
    headers = {**fetch_metadata("same-origin"), "Referer": hub.hub_url("home")}
    query = {"partition": "cpu", "nprocs": "1", "runtime": "00:30:00"}
    response = follow_link(hub, alice, query, headers)
    assert "moss-link-notice" not in response.text
    assert response.status_code == 400
    assert "Slurm refused the job" in soup_of(response).text  # it went as far as sbatch
