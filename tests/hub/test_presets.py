"""Defaults and locks on a real hub (issue 16): the page shows a locked field as fixed and starts
from the defaults; another value of a locked field is refused on every way in (the form, a link,
the REST API); a preset that breaks the admin's own limits stops the hub at start-up.

The hub's Slurm commands do not exist: a refused request must not start anything, and the
server model proves none began. (A lock reaching a real job runs on the cluster, in
tests/slurm/test_presets_reach_slurm.py.)
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import httpx
import pytest
from bs4 import BeautifulSoup
from support.hub import HubProcess, running_hub

ENVS = {
    "py": {"description": "Python 3.11", "path": "/opt/moss-jobenv/bin/"},
    "mods": {"description": "Modules", "modules": "python/3.11"},
}
PARTITIONS = {
    "cpu": {"gpu": "", "max_nprocs": 16, "max_runtime": 8 * 3600, "jupyter_environments": ENVS},
    "short": {
        "gpu": "",
        "max_nprocs": 4,
        "max_runtime": 3600,
        "jupyter_environments": ENVS,
        "locked_fields": {"runtime": "00:30:00"},
    },
}
DEFAULTS = {"runtime": "2:00:00", "nprocs": 2, "environment_id": "mods"}
CONFIG = textwrap.dedent(
    f"""
    c.MOSlurmSpawner.partitions = {PARTITIONS!r}
    c.MOSlurmSpawner.field_defaults = {DEFAULTS!r}
    c.MOSlurmSpawner.locked_fields = {{"default_url": "/lab"}}
    c.MOSlurmSpawner.slurm_bin_dir = "/nonexistent-slurm/bin"
    """
)
LOCK_MESSAGE = "runtime: set to 00:30:00 by this hub's administrators on short"


@pytest.fixture(scope="module")
def hub(hub_infra, tmp_path_factory) -> Iterator[HubProcess]:
    with running_hub(tmp_path_factory.mktemp("presets"), CONFIG) as hub:
        yield hub


@pytest.fixture(scope="module")
def alice(hub) -> httpx.Client:
    return hub.login("alice")


def soup_of(response: httpx.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def no_server(hub: HubProcess) -> bool:
    return hub.api().get("users/alice").json()["servers"] == {}


def test_the_page_starts_from_the_defaults_and_shows_locks_fixed(hub, alice):
    soup = soup_of(alice.get(hub.hub_url("spawn")))
    assert soup.select_one("select[name=runtime] option[selected]")["value"] == "02:00:00"
    assert soup.select_one("select[name=nprocs] option[selected]")["value"] == "2"
    assert soup.select_one("select[name=environment_id] option[selected]")["value"] == "mods"
    start_page = soup.select_one("#moss-default-url")
    assert start_page.has_attr("readonly") and start_page["value"] == "/lab"
    assert soup.select("[name=default_url]") == []  # a fixed field sends nothing


def test_a_partitions_lock_shows_in_its_fragment(hub, alice):
    fragment = alice.get(
        hub.hub_url("moss/form/partition/alice/"),
        params={"partition": "short", "moss_tab": "advanced"},
    )
    assert fragment.status_code == 200, fragment.text[:500]
    runtime = soup_of(fragment).select_one("#moss-runtime")
    assert runtime.has_attr("readonly") and not runtime.has_attr("name")
    assert runtime["value"] == "30 min"


def test_the_form_refuses_another_value_of_a_lock(hub, alice):
    soup = soup_of(alice.get(hub.hub_url("spawn")))
    action = soup.select_one("#spawn_form")["action"]
    form = {"moss_tab": "simple", "partition": "short", "nprocs": "1", "runtime": "01:00:00"}
    response = alice.post(hub.hub_url(action.removeprefix("/hub/")), data=form)
    assert response.status_code == 400
    shown = soup_of(response).select_one("#moss-runtime-error")
    assert shown is not None and shown.text.startswith(LOCK_MESSAGE)
    assert no_server(hub)


def test_a_link_asking_for_another_value_of_a_lock_is_shown_refused(hub, alice):
    link = {"partition": "short", "runtime": "01:00:00"}
    headers = {
        "Sec-Fetch-Site": "cross-site",
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document",
    }
    response = alice.get(hub.hub_url("spawn"), params=link, headers=headers)
    assert response.status_code == 200
    soup = soup_of(response)
    assert soup.select_one("#moss-link-notice") is not None  # held for alice to confirm
    shown = soup.select_one("#moss-runtime-error")
    assert shown is not None and shown.text.startswith(LOCK_MESSAGE), response.text[-6000:]
    assert no_server(hub)


def test_the_rest_api_refuses_another_value_of_a_lock(hub):
    for options, field in (
        ({"partition": "short", "runtime": "02:00:00"}, "runtime"),
        ({"partition": "cpu", "default_url": "/tree"}, "default_url"),
    ):
        response = hub.api().post("users/alice/server", json=options)
        assert response.status_code == 400, response.text
        assert f"{field}: set to " in response.json()["message"]
        assert no_server(hub)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            'c.MOSlurmSpawner.field_defaults = {"nprocs": 8}',
            "c.MOSlurmSpawner.field_defaults: field 'nprocs' = 8 on short: at most 4 CPUs on short",
        ),
        (
            'c.MOSlurmSpawner.locked_fields = {"runtime": 3600}',
            "field 'locked_fields.runtime': must be a string, got 3600",
        ),
    ],
)
def test_a_preset_that_breaks_a_limit_stops_the_hub_naming_it(
    hub_infra, tmp_path, settings, expected
):
    config = f"c.MOSlurmSpawner.partitions = {PARTITIONS!r}\n{settings}\n"
    with pytest.raises(RuntimeError) as failure, running_hub(tmp_path / "hub", config):
        pass
    assert "JupyterHub exited" in str(failure.value)
    assert expected in str(failure.value), str(failure.value)[-3000:]
