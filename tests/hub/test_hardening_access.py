"""Who may reach what: every endpoint of the package, XSRF, and other users' servers.

The package adds three kinds of endpoint under ``{base_url}hub/``:

- ``moss/static/…``: htmx and the stylesheet. Public on purpose, like JupyterHub's own
  ``/hub/static/``: the login page may need them and they hold nothing of anyone's. They must
  not serve anything outside their folder.
- ``moss/form/{fragment}/{user}/{server}``: the spawn page's fragments. They show a user's saved
  options and limits: login required (403, never a redirect htmx would swap in), and
  JupyterHub's ``servers`` scope on that user (an admin has it; a role can grant it).
- ``moss/jobs`` and ``moss/jobs/table``: the admins' page of the hub's Slurm jobs. JupyterHub's
  ``admin:servers`` scope; the page sends anonymous visitors to log in, the table answers 403.
- ``api/batchspawner``: the port report. A server's own token only (tests/hub/test_port_report.py
  and tests/slurm/test_lifecycle_port_report.py); here, a logged-in browser cannot be made to
  post one (XSRF).

And the JupyterHub pages the spawner's form lives in: the spawn form POST needs its ``_xsrf``,
and one user cannot read or start another's server through it, its progress or the REST API.
A config-only hub (no Slurm commands at all): nothing here should ever get as far as Slurm.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import httpx
import pytest
from support.hub import HubProcess, running_hub, xsrf_from_page

pytestmark = pytest.mark.hub

ENV = {"default": {"description": "Default", "path": "/opt/moss-jobenv/bin/"}}
CONFIG = textwrap.dedent(
    f"""
    c.MOSlurmSpawner.partitions = {{
        "cpu": {{"gpu": "", "max_nprocs": 4, "max_runtime": 3600,
                 "jupyter_environments": {ENV!r}}},
    }}
    c.MOSlurmSpawner.slurm_bin_dir = "/nonexistent-slurm/bin"
    c.JupyterHub.allow_named_servers = True
    c.Authenticator.allowed_users = {{"alice", "bob", "carol", "dave"}}
    # carol may look after alice's servers, and nothing else of alice's
    c.JupyterHub.load_roles.append(
        {{"name": "alice-helper", "scopes": ["servers!user=alice"], "users": ["carol"]}}
    )
    # dave looks after alice's servers as an admin does, and nobody else's
    c.JupyterHub.load_roles.append(
        {{"name": "alice-watcher", "scopes": ["admin:servers!user=alice"], "users": ["dave"]}}
    )
    """
)
FRAGMENTS = ("body", "partition", "estimate", "availability", "sessions")
GOOD = {"partition": "cpu", "nprocs": "1", "runtime": "00:30:00"}


@pytest.fixture(scope="module")
def hub(hub_infra, tmp_path_factory) -> Iterator[HubProcess]:
    # allowed and admin users exist in the hub's database from start-up
    with running_hub(tmp_path_factory.mktemp("access-hub"), CONFIG) as started:
        yield started


@pytest.fixture(scope="module")
def clients(hub) -> dict[str, httpx.Client]:
    return {user: hub.login(user) for user in ("alice", "bob", "carol", "dave", "admin")}


def fragment(hub, client, name: str, user: str = "alice", server: str = "") -> httpx.Response:
    return client.get(
        hub.hub_url(f"moss/form/{name}/{user}/{server}"),
        # nprocs=0 is refused at once: the estimate answers without asking (a missing) Slurm
        params={"partition": "cpu", "nprocs": "0"},
        follow_redirects=False,
    )


def alice_server(hub) -> dict | None:
    return hub.api().get("users/alice").json()["servers"].get("")


# -- anonymous -----------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["", "named"])
@pytest.mark.parametrize("name", FRAGMENTS)
def test_fragments_refuse_anonymous_requests_without_redirecting(hub, name, server):
    response = fragment(hub, httpx.Client(), name, server=server)
    assert response.status_code == 403
    assert "location" not in response.headers


def test_the_port_report_refuses_anonymous_requests(hub):
    response = httpx.post(hub.hub_url("api/batchspawner"), json={"port": 1234})
    assert response.status_code == 403


def test_static_files_are_public_but_only_their_own(hub):
    anonymous = httpx.Client()
    for name in ("htmx.min.js", "moss.css"):
        assert anonymous.get(hub.hub_url(f"moss/static/{name}")).status_code == 200
    for escape in (
        "../handlers/fragments.py",
        "..%2fspawner.py",
        "%2e%2e/options.py",
        "/etc/passwd",
    ):
        response = anonymous.get(hub.hub_url("moss/static/") + escape)
        assert response.status_code in (403, 404), escape
        assert "import" not in response.text


def test_anonymous_spawn_pages_send_to_the_login_page(hub):
    for path in ("spawn", "spawn/alice", "spawn-pending/alice"):
        response = httpx.get(hub.hub_url(path), follow_redirects=False)
        assert response.status_code == 302
        assert "/hub/login" in response.headers["location"]


# -- XSRF ----------------------------------------------------------------------------------


def test_a_spawn_form_post_without_its_xsrf_token_is_refused(hub, clients):
    response = clients["alice"].post(hub.hub_url("spawn"), data=GOOD, follow_redirects=False)
    assert response.status_code == 403
    assert alice_server(hub) is None


def test_another_sessions_xsrf_token_does_not_do(hub, clients):
    bobs_token = xsrf_from_page(clients["bob"].get(hub.hub_url("spawn")).text)
    response = clients["alice"].post(
        hub.hub_url("spawn"), data={**GOOD, "_xsrf": bobs_token}, follow_redirects=False
    )
    assert response.status_code == 403
    assert alice_server(hub) is None


def test_a_logged_in_browser_cannot_be_made_to_post_a_port_report(hub, clients):
    """A page elsewhere could make alice's browser post here: her cookie alone is refused."""
    response = clients["alice"].post(hub.hub_url("api/batchspawner"), json={"port": 1234})
    assert response.status_code == 403


def test_fragments_are_get_only(hub, clients):
    xsrf = xsrf_from_page(clients["alice"].get(hub.hub_url("spawn")).text)
    response = clients["alice"].post(
        hub.hub_url("moss/form/body/alice/"), data={"_xsrf": xsrf}, follow_redirects=False
    )
    assert response.status_code == 405


# -- other users ---------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["", "named"])
def test_a_user_cannot_read_another_users_form(hub, clients, server):
    for name in FRAGMENTS:
        response = fragment(hub, clients["bob"], name, server=server)
        assert response.status_code in (403, 404), (name, response.status_code)
        assert "moss-form" not in response.text


def test_a_user_cannot_open_post_or_follow_another_users_spawn(hub, clients):
    bob = clients["bob"]
    assert bob.get(hub.hub_url("spawn/alice"), follow_redirects=False).status_code in (403, 404)
    xsrf = xsrf_from_page(bob.get(hub.hub_url("spawn")).text)
    posted = bob.post(
        hub.hub_url("spawn/alice"), data={**GOOD, "_xsrf": xsrf}, follow_redirects=False
    )
    assert posted.status_code in (403, 404)
    assert bob.get(hub.hub_url("spawn-pending/alice")).status_code in (403, 404)
    assert alice_server(hub) is None


def test_a_users_token_reaches_only_their_own_server_options_and_progress(hub):
    api = hub.api()
    token = api.post("users/bob/tokens", json={"note": "bob's own"}).json()["token"]
    bob = httpx.Client(base_url=hub.hub_url("api/"), headers={"Authorization": f"token {token}"})
    assert bob.get("users/alice").status_code in (403, 404)  # holds alice's saved options
    assert bob.post("users/alice/server", json={"user_options": GOOD}).status_code in (403, 404)
    assert bob.get("users/alice/server/progress").status_code in (403, 404)
    assert bob.delete("users/alice/server").status_code in (403, 404)
    assert bob.get("users/bob").status_code == 200
    assert alice_server(hub) is None


def test_a_role_with_servers_scope_on_alice_may_read_her_form(hub, clients):
    carol = clients["carol"]
    for name in FRAGMENTS:
        assert fragment(hub, carol, name).status_code == 200, name
    page = carol.get(hub.hub_url("spawn/alice"))
    assert page.status_code == 200
    assert "/hub/moss/form/body/alice/" in page.text
    # the scope is on alice only
    assert fragment(hub, carol, "body", user="bob").status_code in (403, 404)


def test_an_admin_may_read_any_form_and_progress(hub, clients):
    admin = clients["admin"]
    for name in FRAGMENTS:
        assert fragment(hub, admin, name).status_code == 200, name
        assert fragment(hub, admin, name, user="bob").status_code == 200, name
    assert admin.get(hub.hub_url("spawn/alice")).status_code == 200


# -- the admins' jobs page -----------------------------------------------------------------


def test_the_jobs_page_sends_anonymous_visitors_to_log_in_and_its_table_refuses_them(hub):
    page = httpx.get(hub.hub_url("moss/jobs"), follow_redirects=False)
    assert page.status_code == 302 and "/hub/login" in page.headers["location"]
    table = httpx.get(hub.hub_url("moss/jobs/table"), follow_redirects=False)
    assert table.status_code == 403 and "location" not in table.headers


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
def test_the_jobs_page_is_for_admin_servers_only(hub, clients, user):
    for path in ("moss/jobs", "moss/jobs/table"):
        response = clients[user].get(hub.hub_url(path), follow_redirects=False)
        assert response.status_code == 403, (user, path)
        assert "moss-jobs" not in response.text


@pytest.mark.parametrize("user", ["admin", "dave"])
def test_admins_and_a_role_with_admin_servers_get_the_jobs_page(hub, clients, user):
    page = clients[user].get(hub.hub_url("moss/jobs"))
    assert page.status_code == 200
    assert "Slurm jobs of this hub" in page.text
    # framed by JupyterHub's own page.html, with the hub's navigation
    assert "<nav" in page.text and 'id="moss-jobs"' in page.text
    table = clients[user].get(hub.hub_url("moss/jobs/table"), params={"sort": "idle"})
    assert table.status_code == 200
    assert table.text.lstrip().startswith("<section") and "<nav" not in table.text
    assert "No server of this hub runs on Slurm." in table.text


def test_the_jobs_table_shrugs_off_hostile_sort_requests(hub, clients):
    for params in ({"sort": "<script>"}, {"order": "\x00"}, {"sort": "user" * 1000}):
        table = clients["admin"].get(hub.hub_url("moss/jobs/table"), params=params)
        assert table.status_code == 200, params
        assert "<script>" not in table.text
