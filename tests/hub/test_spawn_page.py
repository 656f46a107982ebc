"""The spawn page and its htmx fragments, served by a real JupyterHub.

Two hubs: one against the real local cluster (limits from Slurm), one whose Slurm commands do
not exist (limits from the config, "Slurm did not answer" banner). Nothing here submits a job:
the only POSTs are rejected ones.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from bs4 import BeautifulSoup
from support.cluster_hub import CLUSTER_HUB_CONFIG
from support.hub import HubProcess, running_hub

PAYLOAD = "<script>alert(1)</script>'\""
FRAGMENTS = ("body", "partition", "estimate", "availability")
FROM_SLURM = object()
ENV = {"default": {"description": "Default", "path": "/opt/moss-jobenv/bin/"}}

NO_SLURM_CONFIG = textwrap.dedent(
    f"""
    c.MOSlurmSpawner.partitions = {{
        "cpu": {{"description": "CPU nodes", "architecture": "x86_64", "gpu": "",
                 "max_nprocs": 16, "max_runtime": 4 * 3600, "jupyter_environments": {ENV!r}}},
        "gpu": {{"description": "GPU nodes", "gpu": "gpu:a100:{{}}", "max_ngpus": 4,
                 "max_nprocs": 32, "max_runtime": 3600, "jupyter_environments": {ENV!r}}},
        "big": {{"description": "Large jobs", "simple": False, "gpu": "", "max_nprocs": 128,
                 "max_runtime": 86400, "jupyter_environments": {ENV!r}}},
    }}
    # Slurm's commands are missing on this "hub host": the page must work from the config alone.
    c.MOSlurmSpawner.slurm_bin_dir = "/nonexistent-slurm/bin"
    c.MOSlurmSpawner.availability_refresh_interval = 5
    c.JupyterHub.allow_named_servers = True
    """
)

HOSTILE_CONFIG = textwrap.dedent(
    f"""
    c.MOSlurmSpawner.partitions = {{
        "cpu": {{"description": {PAYLOAD!r}, "architecture": {PAYLOAD!r}, "gpu": "",
                 "max_nprocs": 4, "max_runtime": 3600,
                 "jupyter_environments": {{
                     {PAYLOAD!r}: {{"description": {PAYLOAD!r}, "path": "/opt/env/bin/"}},
                 }}}},
    }}
    c.MOSlurmSpawner.slurm_bin_dir = "/nonexistent-slurm/bin"
    """
)


@pytest.fixture(scope="module")
def cluster_hub(hub_infra, slurm_cluster, tmp_path_factory) -> Iterator[HubProcess]:
    config = CLUSTER_HUB_CONFIG + "\nc.MOSlurmSpawner.availability_refresh_interval = 2\n"
    with running_hub(tmp_path_factory.mktemp("hub"), config, env=slurm_cluster.env) as hub:
        yield hub


@pytest.fixture(scope="module")
def config_hub(hub_infra, tmp_path_factory) -> Iterator[HubProcess]:
    with running_hub(tmp_path_factory.mktemp("hub"), NO_SLURM_CONFIG) as hub:
        yield hub


def soup_of(response: httpx.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def spawn_page(hub: HubProcess, client: httpx.Client, path: str = "spawn") -> BeautifulSoup:
    response = client.get(hub.hub_url(path))
    assert response.status_code == 200, response.text[:500]
    return soup_of(response)


def get_fragment(
    hub: HubProcess, client: httpx.Client, name: str, user: str = "alice", server: str = "", **q
) -> httpx.Response:
    return client.get(hub.hub_url(f"moss/form/{name}/{user}/{server}"), params=q)


def values(soup: BeautifulSoup, name: str) -> list[str]:
    return [o["value"] for o in soup.select(f"select[name={name}] option")]


def selected(soup: BeautifulSoup, name: str) -> str:
    return soup.select_one(f"select[name={name}] option[selected]")["value"]


def plant_saved_options(hub: HubProcess, user: str, options: dict) -> None:
    """Store ``user_options`` the way a REST API client can, valid or not."""
    api = hub.api()
    response = api.patch(f"users/{user}/server", json={"user_options": options})
    if response.status_code == 405:
        # JupyterHub 5 has no PATCH; it saves the options of a spawn request before checking
        # them (and reads the whole body as options). An unknown key makes sure it is refused.
        refused = api.post(f"users/{user}/server", json={**options, "planted_by_test": "x"})
        assert refused.status_code == 400, refused.text
        return
    assert response.status_code == 200, response.text


# -- page structure ----------------------------------------------------------------------------


def test_page_without_slurm_renders_from_the_config_with_a_banner(config_hub):
    client = config_hub.login("alice")
    soup = spawn_page(config_hub, client)
    root = soup.select_one("#spawn_form #moss-form")
    assert root is not None
    assert soup.select_one("script[src^='/hub/moss/static/htmx.min.js']") is not None
    assert soup.select_one("link[href^='/hub/moss/static/moss.css']") is not None
    assert [r["value"] for r in soup.select("input[name=partition]")] == ["cpu", "gpu"]
    assert values(soup, "nprocs") == ["1", "2", "4", "8", "16"]
    assert values(soup, "runtime") == ["01:00:00", "02:00:00", "04:00:00"]
    assert soup.select_one("[name=ngpus]") is None
    status = soup.select_one(".moss-availability-status")
    assert "Slurm did not answer" in status.text and "alert-warning" in status["class"]
    assert client.get(config_hub.hub_url("moss/static/moss.css")).status_code == 200


def test_xsrf_header_on_the_root_is_plain_json_with_the_pages_token(config_hub):
    client = config_hub.login("alice")
    soup = spawn_page(config_hub, client)
    action = parse_qs(urlparse(soup.select_one("#spawn_form")["action"]).query)
    headers = json.loads(soup.select_one("#moss-form")["hx-headers"])
    assert headers == {"X-XSRFToken": action["_xsrf"][0]}


def test_page_on_the_cluster_takes_limits_from_slurm(cluster_hub):
    client = cluster_hub.login("alice")
    soup = spawn_page(cluster_hub, client)
    assert [r["value"] for r in soup.select("input[name=partition]")] == ["cpu", "gpu"]
    assert values(soup, "nprocs") == ["1", "2", "4", "8"]  # 8-CPU nodes
    assert values(soup, "environment_id") == ["default", "second"]
    rows = {
        tr.th.text: [td.text.strip() for td in tr.select("td")] for tr in soup.select("tbody tr")
    }
    assert set(rows) == {"cpu", "gpu"}
    assert re.fullmatch(r"\d+ / \d+", rows["cpu"][0])  # idle / total cores
    assert rows["gpu"][-1] == "up"
    assert re.fullmatch(r"\d / 2", rows["gpu"][2])  # free GPUs, where known
    assert "Updated" in soup.select_one(".moss-availability-status").text


@pytest.mark.parametrize(
    ("partition", "nprocs_max", "ngpus_max", "runtime_max"),
    [
        ("cpu", "8", None, "1-00:00:00"),
        ("gpu", "8", "2", "12:00:00"),
        ("debug", "8", FROM_SLURM, "01:00:00"),
    ],
)
def test_partition_fragment_on_the_cluster_for_each_partition(
    cluster_hub, partition, nprocs_max, ngpus_max, runtime_max
):
    client = cluster_hub.login("alice")
    response = get_fragment(
        cluster_hub, client, "partition", moss_tab="advanced", partition=partition
    )
    assert response.status_code == 200
    soup = soup_of(response)
    assert soup.select_one("#moss-partition-controls") is not None
    assert soup.select_one("input[name=nprocs]")["max"] == nprocs_max
    ngpus = soup.select_one("input[name=ngpus]")
    if ngpus_max is not FROM_SLURM:  # debug's GPUs depend on the cluster's layout
        assert (ngpus["max"] if ngpus else None) == ngpus_max
    assert runtime_max in soup.select_one("#moss-runtime-help").text
    assert re.search(r"at most \d+[MG] \(a whole node\)", soup.select_one("#moss-memory-help").text)
    simple = soup_of(
        get_fragment(cluster_hub, client, "partition", moss_tab="simple", partition=partition)
    )
    # GPUs come from Slurm where the admin left `gpu` out; debug is not a Simple partition, so
    # the Simple tab falls back to its default (cpu, configured without GPUs)
    expected_gpus = ["0", "1", "2"] if partition == "gpu" else []
    assert values(simple, "ngpus") == expected_gpus


@pytest.mark.parametrize("tab", ["simple", "advanced"])
def test_body_and_availability_fragments_on_the_cluster(cluster_hub, tab):
    client = cluster_hub.login("alice")
    body = soup_of(get_fragment(cluster_hub, client, "body", moss_tab=tab, partition="gpu"))
    assert body.select_one("input[name=moss_tab]")["value"] == tab
    assert body.select_one("#moss-tab-" + tab)["aria-current"] == "true"
    table = get_fragment(cluster_hub, client, "availability", moss_tab=tab, partition="gpu")
    section = soup_of(table).select_one("section#moss-availability")
    assert section["hx-trigger"].startswith("every 2s ")
    names = [th.text for th in section.select("tbody th")]
    assert names == (["cpu", "gpu"] if tab == "simple" else ["cpu", "gpu", "debug"])
    assert section.select_one("tr.table-active th").text == "gpu"


def test_estimate_fragment_says_when_the_job_would_start(cluster_hub):
    client = cluster_hub.login("alice")
    response = get_fragment(
        cluster_hub, client, "estimate", partition="cpu", nprocs="1", runtime="00:30:00"
    )
    assert response.status_code == 200
    text = " ".join(soup_of(response).text.split())
    assert text == "Would start now" or text.startswith("Expected to start at "), text
    invalid = get_fragment(cluster_hub, client, "estimate", partition="cpu", nprocs="99")
    assert (invalid.status_code, invalid.text.strip()) == (200, "")


def test_fragments_never_fail_on_odd_query_values(config_hub):
    client = config_hub.login("alice")
    odd = {
        "moss_tab": "sideways",
        "partition": "../../etc",
        "nprocs": "-1e9",
        "ngpus": "x",
        "runtime": "\x00",
        "memory": "9" * 200,
        "environment_id": PAYLOAD,
    }
    for name in FRAGMENTS:
        response = get_fragment(config_hub, client, name, **odd)
        assert response.status_code == 200, (name, response.text[:300])
        assert "<script>alert" not in response.text


# -- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FRAGMENTS)
def test_fragments_refuse_anonymous_requests_with_403(config_hub, name):
    response = httpx.get(config_hub.hub_url(f"moss/form/{name}/alice/"), follow_redirects=False)
    assert response.status_code == 403


def test_a_user_cannot_read_another_users_form_but_an_admin_can(config_hub):
    config_hub.login("alice")  # alice exists
    bob = config_hub.login("bob")
    for name in FRAGMENTS:
        assert get_fragment(config_hub, bob, name, user="alice").status_code in (403, 404)
    admin = config_hub.login("admin")
    for name in FRAGMENTS:
        assert get_fragment(config_hub, admin, name, user="alice").status_code == 200


def test_admin_viewing_a_users_spawn_page_gets_fragments_for_that_user(config_hub):
    config_hub.login("alice")
    admin = config_hub.login("admin")
    soup = spawn_page(config_hub, admin, "spawn/alice")
    urls = {el["hx-get"] for el in soup.select("[hx-get]")}
    assert urls == {f"/hub/moss/form/{name}/alice/" for name in FRAGMENTS}
    assert "Spawning server for alice" in soup.text


# -- remembered and rejected options -----------------------------------------------------------


def test_form_is_prefilled_from_saved_options_with_stale_values_dropped(config_hub):
    client = config_hub.login("alice")
    spawn_page(config_hub, client)
    plant_saved_options(
        config_hub,
        "alice",
        {"partition": "gpu", "nprocs": "8", "ngpus": "9", "runtime": "01:00:00",
         "default_url": "/tree", "environment_id": "removed"},
    )  # fmt: skip
    soup = spawn_page(config_hub, client)
    assert soup.select_one("input[name=partition][checked]")["value"] == "gpu"
    assert selected(soup, "nprocs") == "8"
    assert selected(soup, "ngpus") == "0"  # 9 is more than the partition has: dropped
    assert selected(soup, "environment_id") == "default"
    assert soup.select_one("input[name=default_url][checked]")["value"] == "/tree"
    plant_saved_options(config_hub, "alice", {"partition": "big", "memory": "64G"})
    soup = spawn_page(config_hub, client)
    assert soup.select_one("input[name=moss_tab]")["value"] == "advanced"
    assert selected(soup, "partition") == "big"
    assert soup.select_one("input[name=memory]")["value"] == "64G"


def test_bad_submission_comes_back_with_the_message_next_to_the_field(config_hub):
    client = config_hub.login("alice")
    soup = spawn_page(config_hub, client)
    action = soup.select_one("#spawn_form")["action"]
    form = {
        "moss_tab": "advanced",
        "partition": "cpu",
        "nprocs": "2",
        "memory": "lots",
        "runtime": "01:00:00",
        "reservation": "",
        "options": "",
        "root_dir": "",
        "default_url": "/lab",
        "environment_id": "default",
    }
    response = client.post(config_hub.hub_url(action.removeprefix("/hub/")), data=form)
    assert response.status_code == 400
    soup = soup_of(response)
    memory = soup.select_one("input[name=memory]")
    assert memory["value"] == "lots"
    assert "is-invalid" in memory["class"]
    error = soup.select_one("#" + memory["aria-describedby"].split()[-1])
    assert error.text.startswith("memory:") and "invalid-feedback" in error["class"]
    assert soup.select_one("input[name=nprocs]")["value"] == "2"  # values kept
    state = config_hub.api().get("users/alice").json()
    assert state["servers"] == {}  # nothing started


def test_bad_submission_for_a_named_server_comes_back_for_that_server(config_hub):
    client = config_hub.login("alice")
    soup = spawn_page(config_hub, client, "spawn/alice/second")
    action = soup.select_one("#spawn_form")["action"]
    response = client.post(
        config_hub.hub_url(action.removeprefix("/hub/")),
        data={"moss_tab": "simple", "partition": "cpu", "nprocs": "99", "runtime": "01:00:00"},
    )
    assert response.status_code == 400
    soup = soup_of(response)
    assert soup.select_one("#moss-nprocs-error").text.startswith("nprocs: at most 16")
    assert soup.select_one("#moss-availability")["hx-get"] == (
        "/hub/moss/form/availability/alice/second"
    )


# -- escaping ----------------------------------------------------------------------------------


def assert_inert(html: str) -> None:
    soup = BeautifulSoup(html, "html.parser")
    assert "<script>alert(1)" not in html
    assert not soup.find("script", string=re.compile("alert"))
    assert not soup.find(attrs={"onerror": True})


def test_admin_strings_are_shown_as_text_on_the_page_and_fragments(hub_factory):
    hub = hub_factory(HOSTILE_CONFIG)
    client = hub.login("alice")
    page = client.get(hub.hub_url("spawn"))
    assert page.status_code == 200
    assert_inert(page.text)
    assert PAYLOAD in soup_of(page).select_one(".moss-partition-card").text
    assert soup_of(page).select_one("select[name=environment_id] option")["value"] == PAYLOAD
    for name in FRAGMENTS:
        for tab in ("simple", "advanced"):
            response = get_fragment(hub, client, name, moss_tab=tab)
            assert response.status_code == 200
            assert_inert(response.text)


def test_hostile_saved_options_are_escaped_or_dropped(config_hub):
    client = config_hub.login("alice")
    spawn_page(config_hub, client)
    hostile = {name: PAYLOAD for name in (
        "partition", "nprocs", "ngpus", "memory", "runtime", "reservation", "options",
        "output", "default_url", "root_dir", "environment_id", "environment_path",
        "environment_modules")}  # fmt: skip
    hostile["partition"] = "cpu"
    plant_saved_options(config_hub, "alice", hostile)
    page = client.get(config_hub.hub_url("spawn"))
    assert page.status_code == 200
    assert_inert(page.text)
    assert PAYLOAD not in soup_of(page).text  # every hostile value was invalid: dropped
    admin = config_hub.login("admin")
    assert_inert(admin.get(config_hub.hub_url("spawn/alice")).text)


# -- sub-path deployments ----------------------------------------------------------------------


def test_everything_lives_under_the_hubs_base_url(hub_factory):
    hub = hub_factory(NO_SLURM_CONFIG, base_url="/jupyter/")
    client = hub.login("alice")
    soup = spawn_page(hub, client)
    assert soup.select_one("script[src^='/jupyter/hub/moss/static/htmx.min.js']") is not None
    for element in soup.select("[hx-get]"):
        url = element["hx-get"]
        assert url.startswith("/jupyter/hub/moss/form/")
        response = client.get(
            hub.url.removesuffix("/jupyter/") + url, params={"moss_tab": "simple"}
        )
        assert response.status_code == 200, url
