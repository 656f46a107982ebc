"""Partitions and environments per JupyterHub group, on a real JupyterHub with real groups.

The hub's groups come from ``c.JupyterHub.load_groups``: alice is in ``gpulab`` and ``ml``, bob
in none, and admin is a JupyterHub admin. The partition ``gpu`` is for ``gpulab``; ``cpu`` is for
everyone but its environment ``ml`` is for ``ml``; ``secret`` has only that environment.

Bob does not see what is not his on the page or its fragments, and is refused, naming the field,
on every way in: a link (held or typed in), the REST API (his own token or an admin's) and a form
POST with a valid XSRF token. The hub's Slurm commands do not exist, so nothing here can start a
job: a request the validator accepts goes as far as sbatch and fails there ("Slurm refused the
job"), which is how the members' requests are seen to pass.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator

import httpx
import pytest
from bs4 import BeautifulSoup
from support.hub import TYPED_IN_ADDRESS_BAR, HubProcess, running_hub, xsrf_from_page

pytestmark = pytest.mark.hub

EVERYONE = {"description": "Default", "path": "/opt/moss-jobenv/bin/"}
ML = {"description": "Machine learning", "path": "/opt/ml/bin/", "groups": ["ml"]}
PARTITIONS = {
    "cpu": {"description": "CPU nodes", "gpu": "", "max_nprocs": 4, "max_runtime": 3600,
            "jupyter_environments": {"default": EVERYONE, "ml": ML}},
    "gpu": {"description": "GPU nodes", "gpu": "gpu:a100:{}", "max_ngpus": 2, "max_nprocs": 4,
            "max_runtime": 3600, "groups": ["gpulab"],
            "jupyter_environments": {"default": EVERYONE}},
    "secret": {"description": "ML only", "gpu": "", "max_nprocs": 4, "max_runtime": 3600,
               "jupyter_environments": {"ml": ML}},
}  # fmt: skip
CONFIG = textwrap.dedent(
    f"""
    c.MOSlurmSpawner.partitions = {PARTITIONS!r}
    c.MOSlurmSpawner.slurm_bin_dir = "/nonexistent-slurm/bin"
    c.JupyterHub.load_groups = {{
        "gpulab": {{"users": ["alice"]}},
        "ml": {{"users": ["alice"]}},
        "others": {{"users": ["bob"]}},
    }}
    # the tests' admin service may change group memberships
    c.JupyterHub.load_roles.append(
        {{"name": "group-keeper", "scopes": ["admin:groups"], "services": ["moss-admin"]}}
    )
    """
)
GPU_REQUEST = {"partition": "gpu", "nprocs": "1", "runtime": "00:30:00"}
ML_REQUEST = {"partition": "cpu", "nprocs": "1", "runtime": "00:30:00", "environment_id": "ml"}
GPU_REFUSAL = "partition: you may not use gpu: reserved for members of the JupyterHub group gpulab"
ML_REFUSAL = "environment_id: you may not use 'ml' on cpu: reserved for members of the JupyterHub"
SLURM_REACHED = "Slurm refused the job"


@pytest.fixture(scope="module")
def hub(hub_infra, tmp_path_factory) -> Iterator[HubProcess]:
    with running_hub(tmp_path_factory.mktemp("groups-hub"), CONFIG) as started:
        yield started


@pytest.fixture(scope="module")
def clients(hub) -> dict[str, httpx.Client]:
    return {user: hub.login(user) for user in ("alice", "bob", "admin")}


@pytest.fixture(scope="module")
def jupyterhub_6(hub) -> bool:
    return hub.api().get("").json()["version"].startswith("6.")


def soup_of(response: httpx.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def text_of(response: httpx.Response) -> str:
    return " ".join(soup_of(response).get_text(" ").split())


def server_of(hub: HubProcess, user: str) -> dict | None:
    return hub.api().get(f"users/{user}").json()["servers"].get("")


def partitions_on(soup: BeautifulSoup) -> dict[str, list[str]]:
    return {
        "cards": [i["value"] for i in soup.select("input[name=partition][type=radio]")],
        "select": [o["value"] for o in soup.select("select[name=partition] option")],
        "table": [th.get_text(strip=True) for th in soup.select("tbody th[scope=row]")],
        "environments": [o["value"] for o in soup.select("select[name=environment_id] option")],
    }


def fragment(hub, client, name: str, user: str, **query) -> BeautifulSoup:
    response = client.get(hub.hub_url(f"moss/form/{name}/{user}/"), params=query)
    assert response.status_code == 200, response.text[:500]
    return soup_of(response)


# -- what each one sees ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "partitions", "environments"),
    [
        ("alice", ["cpu", "gpu", "secret"], ["default", "ml"]),  # a member of gpulab and ml
        ("bob", ["cpu"], ["default"]),  # in neither
        ("admin", ["cpu", "gpu", "secret"], ["default", "ml"]),  # a hub admin, in neither
    ],
)
def test_members_non_members_and_admins_each_see_theirs(
    hub, clients, user, partitions, environments
):
    client = clients[user]
    page = client.get(hub.hub_url("spawn"))
    assert page.status_code == 200
    simple = partitions_on(soup_of(page))
    assert simple["cards"] == partitions
    assert simple["table"] == partitions
    assert simple["environments"] == environments
    advanced = partitions_on(fragment(hub, client, "body", user, moss_tab="advanced"))
    assert advanced["select"] == partitions and advanced["table"] == partitions
    table = partitions_on(fragment(hub, client, "availability", user, moss_tab="advanced"))
    assert table["table"] == partitions
    if user == "bob":
        shown = text_of(page)
        assert "GPU nodes" not in shown and "ML only" not in shown
        assert "Machine learning" not in shown


def test_a_fragment_asked_for_a_hidden_partition_shows_the_default_one(hub, clients):
    for name in ("body", "partition", "availability"):
        soup = fragment(hub, clients["bob"], name, "bob", moss_tab="advanced", partition="gpu")
        assert "GPU nodes" not in soup.get_text(" "), name
        assert soup.select("[name=ngpus]") == [], name  # gpu's controls would ask for GPUs
        assert "gpu" not in partitions_on(soup)["table"], name
    member = fragment(hub, clients["alice"], "partition", "alice", moss_tab="advanced",
                      partition="gpu")  # fmt: skip
    assert member.select("[name=ngpus]") != []


def test_an_admin_viewing_bobs_form_sees_what_bob_may_use(hub, clients):
    """The server is bob's, and so are the job and its charges: his choices, not the admin's."""
    page = clients["admin"].get(hub.hub_url("spawn/bob"))
    assert page.status_code == 200
    assert partitions_on(soup_of(page))["cards"] == ["cpu"]
    body = fragment(hub, clients["admin"], "body", "bob", moss_tab="advanced")
    assert partitions_on(body)["select"] == ["cpu"]


# -- refused on every way in ------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "opt-"])
@pytest.mark.parametrize(
    ("request_", "refusal"), [(GPU_REQUEST, GPU_REFUSAL), (ML_REQUEST, ML_REFUSAL)]
)
def test_a_non_member_following_a_spawn_url_is_refused(hub, clients, prefix, request_, refusal):
    params = {f"{prefix}{k}": v for k, v in request_.items()}
    response = clients["bob"].get(
        hub.hub_url("spawn"), params=params, headers=TYPED_IN_ADDRESS_BAR, follow_redirects=False
    )
    assert response.status_code == 400, response.text[:1000]
    assert refusal in text_of(response)
    assert SLURM_REACHED not in text_of(response)
    assert server_of(hub, "bob") is None


def test_a_held_link_shows_the_refusal_to_a_non_member_only(hub, clients):
    cross_site = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                  "Sec-Fetch-Dest": "document"}  # fmt: skip

    def follow(user: str) -> str:
        response = clients[user].get(
            hub.hub_url("spawn"), params=GPU_REQUEST, headers=cross_site, follow_redirects=False
        )
        assert response.status_code == 200
        assert soup_of(response).select_one("#moss-link-notice") is not None
        return text_of(response)

    assert GPU_REFUSAL in follow("bob")
    assert "you may not use" not in follow("alice")
    assert server_of(hub, "bob") is None and server_of(hub, "alice") is None


def api_spawn(hub, token: str, user: str, options: dict, jupyterhub_6: bool) -> httpx.Response:
    # JupyterHub < 6 reads the whole body as the options
    body = {"user_options": options} if jupyterhub_6 else options
    return httpx.post(
        hub.api_url(f"users/{user}/server"),
        headers={"Authorization": f"token {token}"},
        content=json.dumps(body),
        timeout=30,
    )


@pytest.mark.parametrize(
    ("request_", "refusal"), [(GPU_REQUEST, GPU_REFUSAL), (ML_REQUEST, ML_REFUSAL)]
)
def test_a_non_member_is_refused_by_the_rest_api(hub, jupyterhub_6, request_, refusal):
    token = hub.api().post("users/bob/tokens", json={"note": "bob's"}).json()["token"]
    for who in (token, hub.admin_token):  # bob himself, and an admin service for bob
        response = api_spawn(hub, who, "bob", request_, jupyterhub_6)
        assert response.status_code == 400, response.text
        assert refusal in response.json()["message"]
        assert server_of(hub, "bob") is None


@pytest.mark.parametrize(
    ("request_", "field", "refusal"),
    [(GPU_REQUEST, "partition", GPU_REFUSAL), (ML_REQUEST, "environment_id", ML_REFUSAL)],
)
def test_a_forged_form_post_is_refused_with_the_message(hub, clients, request_, field, refusal):
    bob = clients["bob"]
    xsrf = xsrf_from_page(bob.get(hub.hub_url("spawn")).text)
    # what the Advanced tab posts (its memory field too), with a choice the page never offered
    form = {**request_, "memory": "", "moss_tab": "advanced", "_xsrf": xsrf}
    response = bob.post(hub.hub_url("spawn"), data=form, follow_redirects=False)
    assert response.status_code == 400, response.text[:1000]
    assert refusal in text_of(response)
    # the re-rendered form offers bob only his own, and names the field
    soup = soup_of(response)
    assert partitions_on(soup)["select"] == ["cpu"]
    assert partitions_on(soup)["environments"] == ["default"]
    if field == "environment_id":
        error = soup.select_one("#moss-environment-id-error")
        assert error is not None and error.get_text(strip=True).startswith(refusal)
    assert server_of(hub, "bob") is None


# -- membership is read on every request --------------------------------------------------------


def test_joining_and_leaving_a_group_shows_and_hides_at_once(hub, clients):
    api = hub.api()
    bob = clients["bob"]

    def bobs_cards() -> list[str]:
        # the Simple tab's cards, or the Advanced tab's select (saved options may open it)
        shown = partitions_on(soup_of(bob.get(hub.hub_url("spawn"))))
        return shown["cards"] or shown["select"]

    assert bobs_cards() == ["cpu"]
    assert api.post("groups/gpulab/users", json={"users": ["bob"]}).status_code == 200
    try:
        assert bobs_cards() == ["cpu", "gpu"]
    finally:
        left = api.request("DELETE", "groups/gpulab/users", json={"users": ["bob"]})
        assert left.status_code == 200
    assert bobs_cards() == ["cpu"]


# -- members and admins get through ----------------------------------------------------------


@pytest.mark.parametrize("request_", [GPU_REQUEST, ML_REQUEST], ids=["gpu", "ml"])
def test_a_members_request_passes_validation_and_goes_to_slurm(hub, clients, request_):
    alice = clients["alice"]
    xsrf = xsrf_from_page(alice.get(hub.hub_url("spawn")).text)
    form = {**request_, "memory": "", "moss_tab": "advanced", "_xsrf": xsrf}
    response = alice.post(hub.hub_url("spawn"), data=form, follow_redirects=False)
    assert response.status_code == 400, response.text[:1000]
    shown = text_of(response)
    assert SLURM_REACHED in shown, shown[:2000]  # it went as far as sbatch
    assert "you may not use" not in shown


@pytest.mark.parametrize(
    "request_", [GPU_REQUEST, {**ML_REQUEST, "partition": "secret"}], ids=["gpu", "secret"]
)
def test_an_admins_request_passes_validation(hub, clients, request_):
    """Shown as a held link, which the page checks with the one validator and submits nothing
    (the hub's admin has no Unix account here, so a submission could not go as far as sbatch)."""
    response = clients["admin"].get(
        hub.hub_url("spawn"),
        params=request_,
        headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                 "Sec-Fetch-Dest": "document"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 200
    soup = soup_of(response)
    assert soup.select_one("#moss-link-notice") is not None
    assert soup.select(".is-invalid, .invalid-feedback:not(:empty)") == [], text_of(response)
    chosen = soup.select_one("input[name=partition][checked], select[name=partition] [selected]")
    assert chosen["value"] == request_["partition"]
